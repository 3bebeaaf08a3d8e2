package server

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// KeyFailureLimit bounds how fast one client address may fail API-key checks, at
// /identity/token and in an Authorization: apikey header: a token bucket of Burst failed
// attempts, refilled by one every Every. While its bucket is empty, every API-key attempt
// from that address is answered 429 with Retry-After, a right key included, or guessing
// would go on at the refill rate plus one. Burst 0 turns the limit off.
type KeyFailureLimit struct {
	Burst int
	Every time.Duration
}

// DefaultKeyFailureLimit allows 100 failed attempts at once, then one a second: far more
// than an honest client or test suite fails, far less than the thousands a second a
// guesser sends.
var DefaultKeyFailureLimit = KeyFailureLimit{Burst: 100, Every: time.Second}

// keyGuardClients bounds the addresses the guard tracks. Past it, addresses whose bucket
// is full again are forgotten (they are back where a new address starts); if every one is
// still limited, all are forgotten, which lets a guesser with that many addresses start
// afresh, rather than letting the map grow without bound.
const keyGuardClients = 10000

// keyGuard is one process's buckets of failed API-key attempts, by client address.
// Replicas keep their own: behind a load balancer a guesser gets Burst per replica.
type keyGuard struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	by    map[string]*rate.Limiter
}

func newKeyGuard(l KeyFailureLimit) *keyGuard {
	if l.Burst <= 0 || l.Every <= 0 {
		return nil
	}
	return &keyGuard{limit: rate.Every(l.Every), burst: l.Burst, by: map[string]*rate.Limiter{}}
}

// wait is how long the address must wait before its next API-key attempt; 0: it may try now.
func (g *keyGuard) wait(addr string, now time.Time) time.Duration {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	lim := g.by[addr]
	if lim == nil {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(g.limit) * float64(time.Second))
}

// failed records a failed attempt; it reports whether the address is now limited.
func (g *keyGuard) failed(addr string, now time.Time) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	lim := g.by[addr]
	if lim == nil {
		if len(g.by) >= keyGuardClients {
			g.forget(now)
		}
		lim = rate.NewLimiter(g.limit, g.burst)
		g.by[addr] = lim
	}
	lim.AllowN(now, 1)
	return lim.TokensAt(now) < 1
}

// forget drops the addresses whose bucket is full again; all of them if none is.
func (g *keyGuard) forget(now time.Time) {
	for addr, lim := range g.by {
		if lim.TokensAt(now) >= float64(g.burst) {
			delete(g.by, addr)
		}
	}
	if len(g.by) >= keyGuardClients {
		clear(g.by)
	}
}

// retryAfterSeconds is a wait as Retry-After says it: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
