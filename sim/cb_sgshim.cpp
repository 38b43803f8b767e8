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
// not yet reclaimed. The wait is on the receive alone; a send that has ended is reclaimed
// (waited on, which SimGrid answers at once) before the actor's next wait. Waiting on the
// sends too, as the port first did, woke the sender when each send ended just to wait again,
// and each such wait of a node with a deadline set and removed a SimGrid timer: two of the
// four timed waits of a request (docs/simulator.md, "Actors, timers, atomic steps"). A send
// must be waited on by its sender all the same: SimGrid 3.32 keeps it in the sender's
// activity list until then (a test does not take it out), and that list is walked.
struct cb_sgshim_port {
    sg4::Mailbox *mailbox;
    void *payload; // where the receive writes the message's pointer
    // Activities, not comms: Comm::wait_any_for would copy the vector with a dynamic_cast
    // per element at every wait. recv[0] is the receive, or null between a delivery and the
    // next wait.
    std::vector<sg4::ActivityPtr> recv;
    std::vector<sg4::ActivityPtr> sends;
    uint64_t failed;
};

extern "C" cb_sgshim_port *cb_sgshim_port_new(sg_mailbox_t mailbox)
{
    try {
        auto *p = new cb_sgshim_port();
        p->mailbox = mailbox;
        p->payload = nullptr;
        p->recv.emplace_back(nullptr);
        p->sends.reserve(8);
        p->failed = 0;
        return p;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "cb_sgshim_port_new: %s\n", e.what());
        return nullptr;
    }
}

static void port_cancel_started(std::vector<sg4::ActivityPtr> &acts)
{
    for (auto &a : acts) {
        if (a != nullptr && a->get_state() == sg4::Activity::State::STARTED) {
            a->cancel();
        }
    }
}

extern "C" void cb_sgshim_port_del(cb_sgshim_port *p)
{
    if (p == nullptr) {
        return;
    }
    // After the run: what is still pending belongs to an actor that ended or was killed.
    // Cancelling marks the s4u side done, so dropping it is not reported as a forgotten comm
    // (a send that ended but was not reclaimed yet is only marked: its transfer is over).
    port_cancel_started(p->recv);
    port_cancel_started(p->sends);
    delete p;
}

extern "C" int cb_sgshim_port_send(cb_sgshim_port *p, sg_mailbox_t to, void *payload,
                                   uint64_t bytes)
{
    try {
        sg4::CommPtr c = to->put_async(payload, bytes);
        p->sends.emplace_back(c.get());
        return 0;
    } catch (const simgrid::Exception &e) {
        std::fprintf(stderr, "cb_sgshim_port_send: %s\n", e.what());
        return -1;
    }
}

// Wait on (take out of SimGrid's books) every send whose transfer is over: nothing left to
// transfer means ended, since SimGrid frees a comm's network action when it ends. The wait
// returns at once. A send that failed (never seen in cachebed, which turns no host or link
// off) throws here and is dropped too: its payload stays with the sender.
static void port_reclaim(cb_sgshim_port *p)
{
    for (size_t i = p->sends.size(); i-- > 0;) {
        sg4::ActivityPtr &a = p->sends[i];
        if (a->get_remaining() > 0) {
            continue;
        }
        try {
            a->wait();
        } catch (const simgrid::NetworkFailureException &) {
            p->failed++;
        }
        a = std::move(p->sends.back());
        p->sends.pop_back();
    }
}

extern "C" int cb_sgshim_port_wait(cb_sgshim_port *p, double timeout_s, double until_s,
                                   void **payload)
{
    double left = timeout_s; // the clock is read again only after a failed receive
    for (;;) {
        try {
            port_reclaim(p);
            if (p->recv[0] == nullptr) {
                p->payload = nullptr;
                p->recv[0] = p->mailbox->get_async(&p->payload).get();
            }
            if (left <= 0 && timeout_s >= 0) {
                return 0;
            }
            ssize_t i = sg4::Activity::wait_any_for(p->recv, left);
            if (i < 0) {
                return 0;
            }
            p->recv[0] = nullptr;
            if (p->payload != nullptr) {
                *payload = p->payload;
                return 1;
            }
            p->failed++; // a receive that ended without a message: post another
        } catch (const simgrid::TimeoutException &) {
            return 0;
        } catch (const simgrid::NetworkFailureException &) {
            p->recv[0] = nullptr; // never seen in cachebed, which turns no host or link off
            p->failed++;
        } catch (const simgrid::Exception &e) {
            std::fprintf(stderr, "cb_sgshim_port_wait: %s\n", e.what());
            return -1;
        }
        if (timeout_s >= 0) {
            left = until_s - sg4::Engine::get_clock();
        }
    }
}
