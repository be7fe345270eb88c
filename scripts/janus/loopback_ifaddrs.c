/* LD_PRELOAD shim for scripts/bench_relay.py --peer janus: Janus skips interfaces flagged
 * IFF_LOOPBACK when it gathers ICE candidates, so on loopback it would offer none. This clears
 * the flag in what getifaddrs(3) returns; janus.jcfg's ice_enforce_list then keeps "lo" only.
 * Built at bench time into a temporary directory: gcc -shared -fPIC -o shim.so this.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **);
    if (!real)
        real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    if (!real)
        return -1;
    int rc = real(ifap);
    if (rc == 0)
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next)
            i->ifa_flags &= ~IFF_LOOPBACK;
    return rc;
}
