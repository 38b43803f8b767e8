// cb_sgshim.cpp: s4u calls the SimGrid C API lacks (platform creation); see cb_sgshim.h.
#include "cb_sgshim.h"

#include <cstdio>
#include <exception>
#include <string>

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
