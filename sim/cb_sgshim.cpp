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

// ---- ports ----------------------------------------------------------------------------------

// One actor's messaging: its receive (a get on its own mailbox) and the sends it has posted and
// not yet seen complete, all waited on together. acts[0] is the receive (or null between a
// delivery and the next wait); acts[1..] the sends, in no particular order.
struct cb_sgshim_port {
    sg4::Mailbox *mailbox;
    void *payload; // where the receive writes the message's pointer
    // Activities, not comms: Comm::wait_any_for would copy the vector with a dynamic_cast
    // per element at every wait.
    std::vector<sg4::ActivityPtr> acts;
    uint64_t failed;
};

extern "C" cb_sgshim_port *cb_sgshim_port_new(sg_mailbox_t mailbox)
{
    try {
        auto *p = new cb_sgshim_port();
        p->mailbox = mailbox;
        p->payload = nullptr;
        p->acts.reserve(8);
        p->acts.emplace_back(nullptr);
        p->failed = 0;
        return p;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "cb_sgshim_port_new: %s\n", e.what());
        return nullptr;
    }
}

extern "C" void cb_sgshim_port_del(cb_sgshim_port *p)
{
    if (p == nullptr) {
        return;
    }
    // After the run: what is still pending belongs to an actor that ended or was killed.
    // Cancelling marks the s4u side done, so dropping it is not reported as a forgotten comm.
    for (auto &a : p->acts) {
        if (a != nullptr && a->get_state() == sg4::Activity::State::STARTED) {
            a->cancel();
        }
    }
    delete p;
}

extern "C" int cb_sgshim_port_send(cb_sgshim_port *p, sg_mailbox_t to, void *payload,
                                   uint64_t bytes)
{
    try {
        sg4::CommPtr c = to->put_async(payload, bytes);
        p->acts.emplace_back(c.get());
        return 0;
    } catch (const simgrid::Exception &e) {
        std::fprintf(stderr, "cb_sgshim_port_send: %s\n", e.what());
        return -1;
    }
}

// After a NetworkFailureException, which does not say which comm failed: test each and
// forget those that ended. A receive that ended without a payload failed; one with a payload
// is delivered (returns 1). Never seen in cachebed, which turns no host or link off.
static int port_drop_failed(cb_sgshim_port *p, void **payload)
{
    int delivered = 0;
    for (size_t i = p->acts.size(); i-- > 0;) {
        sg4::ActivityPtr &a = p->acts[i];
        bool ended = true;
        if (a == nullptr) {
            continue;
        }
        try {
            ended = a->test();
        } catch (const simgrid::Exception &) {
            ended = true;
        }
        if (!ended) {
            continue;
        }
        if (i == 0) {
            a = nullptr;
            if (p->payload != nullptr) {
                *payload = p->payload;
                delivered = 1;
            } else {
                p->failed++;
            }
        } else {
            a = std::move(p->acts.back());
            p->acts.pop_back();
        }
    }
    return delivered;
}

extern "C" int cb_sgshim_port_wait(cb_sgshim_port *p, double timeout_s, double until_s,
                                   void **payload)
{
    double left = timeout_s; // the clock is read only once a completed send ended a wait
    for (;;) {
        try {
            if (p->acts[0] == nullptr) {
                p->payload = nullptr;
                p->acts[0] = p->mailbox->get_async(&p->payload).get();
            }
            if (left <= 0 && timeout_s >= 0) {
                return 0;
            }
            ssize_t i = sg4::Activity::wait_any_for(p->acts, left);
            if (i < 0) {
                return 0;
            }
            if (i == 0) {
                p->acts[0] = nullptr;
                *payload = p->payload;
                return 1;
            }
            // A send completed: the receiver owns its payload now.
            p->acts[static_cast<size_t>(i)] = std::move(p->acts.back());
            p->acts.pop_back();
            if (timeout_s >= 0) {
                left = until_s - sg4::Engine::get_clock();
            }
        } catch (const simgrid::TimeoutException &) {
            return 0;
        } catch (const simgrid::NetworkFailureException &) {
            if (port_drop_failed(p, payload)) { // a failed send's payload stays with its sender
                return 1;
            }
        } catch (const simgrid::Exception &e) {
            std::fprintf(stderr, "cb_sgshim_port_wait: %s\n", e.what());
            return -1;
        }
    }
}

extern "C" size_t cb_sgshim_port_pending(const cb_sgshim_port *p)
{
    return p->acts.size() - 1;
}
