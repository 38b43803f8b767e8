// cb_sgshim.cpp: s4u calls the SimGrid C API lacks (platform creation); see cb_sgshim.h.
#include "cb_sgshim.h"

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <simgrid/engine.h>

#include <simgrid/s4u.hpp>

namespace sg4 = simgrid::s4u;

extern "C" int cb_sgshim_build_star(uint32_t host_count, double link_latency_s,
                                    double link_bandwidth_Bps, sg_host_t *hosts_out)
{
    // No C++ exception may cross into C: report it and return -1 instead.
    try {
        sg4::NetZone *zone = sg4::create_star_zone("cachebed");
        for (uint32_t i = 0; i < host_count; i++) {
            std::string id = std::to_string(i);
            sg4::Host *host = zone->create_host("h" + id, 1e9);
            sg4::Link *link = zone->create_split_duplex_link("l" + id, link_bandwidth_Bps);
            link->set_latency(link_latency_s);
            // Star zone: a route from the host to the centre (dst = nullptr). Symmetrical, so
            // the way back uses the DOWN half of the same link.
            zone->add_route(host->get_netpoint(), nullptr, nullptr, nullptr,
                            {sg4::LinkInRoute(link, sg4::LinkInRoute::Direction::UP)}, true);
            hosts_out[i] = host;
        }
        zone->seal();
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "cb_sgshim_build_star: %s\n", e.what());
        return -1;
    }
}

extern "C" void cb_sgshim_set_receiver(sg_mailbox_t mailbox, sg_actor_t receiver)
{
    mailbox->set_receiver(sg4::ActorPtr(receiver));
}

extern "C" int cb_sgshim_load_platform(const char *path, char *err, size_t err_cap)
{
    try {
        simgrid_load_platform(path);
        return 0;
    } catch (const std::exception &e) {
        std::snprintf(err, err_cap, "%s", e.what());
        return -1;
    }
}

extern "C" int cb_sgshim_check_routes(sg_host_t const *from, uint32_t from_count,
                                      sg_host_t const *to, uint32_t to_count, char *err,
                                      size_t err_cap)
{
    for (uint32_t i = 0; i < from_count; i++) {
        for (uint32_t j = 0; j < to_count; j++) {
            if (from[i] == to[j]) {
                continue;
            }
            try {
                std::vector<sg4::Link *> links;
                double lat = 0;
                from[i]->route_to(to[j], links, &lat);
                links.clear();
                to[j]->route_to(from[i], links, &lat);
            } catch (const std::exception &e) {
                std::snprintf(err, err_cap, "no route between hosts %s and %s: %s",
                              from[i]->get_cname(), to[j]->get_cname(), e.what());
                return -1;
            }
        }
    }
    return 0;
}
