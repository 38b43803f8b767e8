// cb_sgshim.cpp: s4u calls the SimGrid C API lacks (platform creation); see cb_sgshim.h.
#include "cb_sgshim.h"

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

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

// ---- ports ----------------------------------------------------------------------------------

// One actor's messaging: its receive (a get on its own mailbox) and the sends it has posted and
// not yet seen complete, all waited on together. acts[0] is the receive (or null between a
// delivery and the next wait); acts[1..] the sends, in no particular order.
struct cb_sgshim_port {
    sg4::Mailbox *mailbox;
    void *payload; // where the receive writes the message's pointer
    std::vector<sg4::CommPtr> acts;
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
        p->acts.emplace_back(std::move(c));
        return 0;
    } catch (const simgrid::Exception &e) {
        std::fprintf(stderr, "cb_sgshim_port_send: %s\n", e.what());
        return -1;
    }
}

// Drop the comms a failure ended (Comm::wait_any_for marks them FAILED before it throws).
static void port_drop_failed(cb_sgshim_port *p)
{
    for (size_t i = p->acts.size(); i-- > 0;) {
        sg4::CommPtr &a = p->acts[i];
        if (a == nullptr || a->get_state() != sg4::Activity::State::FAILED) {
            continue;
        }
        p->failed++;
        if (i == 0) {
            a = nullptr;
        } else {
            a = std::move(p->acts.back());
            p->acts.pop_back();
        }
    }
}

extern "C" int cb_sgshim_port_wait(cb_sgshim_port *p, double timeout_s, void **payload)
{
    double until = timeout_s < 0 ? -1.0 : sg4::Engine::get_clock() + timeout_s;
    for (;;) {
        try {
            if (p->acts[0] == nullptr) {
                p->acts[0] = p->mailbox->get_async(&p->payload);
            }
            double left = -1.0;
            if (until >= 0) {
                left = until - sg4::Engine::get_clock();
                if (left <= 0) {
                    return 0;
                }
            }
            ssize_t i = sg4::Comm::wait_any_for(p->acts, left);
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
        } catch (const simgrid::TimeoutException &) {
            return 0;
        } catch (const simgrid::NetworkFailureException &) {
            port_drop_failed(p); // the payload stays with its sender
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
