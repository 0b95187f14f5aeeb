package s3store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// race runs AcquireLease(key) on two stores ("hosts") at once and returns
// the winners' leases and the losers' errors.
func race(t *testing.T, a, b *Store, key string, ttl time.Duration) ([]*Lease, []error) {
	t.Helper()
	var (
		mu     sync.Mutex
		wins   []*Lease
		losses []error
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			l, err := s.AcquireLease(context.Background(), key, fmt.Sprintf("host-%c", 'a'+i), ttl)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				losses = append(losses, err)
			} else {
				wins = append(wins, l)
			}
		}()
	}
	close(start)
	wg.Wait()
	return wins, losses
}

// TestLeaseRace: two hosts racing for a free lease, and then for an
// expired one, always produce exactly one winner; the loser gets
// ErrLeaseHeld; the expired holder can neither renew nor release.
func TestLeaseRace(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	a := newStore(t, testOptions(srv, bucket))
	b := newStore(t, testOptions(srv, bucket))
	c := newStore(t, testOptions(srv, bucket))
	ctx := context.Background()

	const rounds = 20
	for i := range rounds {
		key := fmt.Sprintf("leases/SG%d", i)
		wins, losses := race(t, a, b, key, time.Hour)
		if len(wins) != 1 || len(losses) != 1 || !errors.Is(losses[0], ErrLeaseHeld) {
			t.Fatalf("round %d: %d winners, losers %v", i, len(wins), losses)
		}
		var le *LeaseError
		if !errors.As(losses[0], &le) && i == 0 {
			t.Logf("loser: %v", losses[0])
		}
		if err := wins[0].Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if err := wins[0].Release(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("released lease object still there: %v", err)
		}
	}

	// Expired leases: held by c with a 1 s TTL, then raced for by a and b.
	var olds []*Lease
	for i := range 5 {
		l, err := c.AcquireLease(ctx, fmt.Sprintf("leases/X%d", i), "host-c", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		olds = append(olds, l)
	}
	if _, err := a.AcquireLease(ctx, "leases/X0", "host-a", time.Hour); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("unexpired lease taken: %v", err)
	} else {
		errContains(t, err, "host-c", "s3://"+bucket+"/leases/X0")
	}
	// Last-Modified has 1 s resolution and a server's Date header may lag
	// by a second (versitygw caches it): expiry is judged late, never early.
	time.Sleep(3500 * time.Millisecond)
	for i, old := range olds {
		key := fmt.Sprintf("leases/X%d", i)
		wins, losses := race(t, a, b, key, time.Hour)
		if len(wins) != 1 || len(losses) != 1 || !errors.Is(losses[0], ErrLeaseHeld) {
			t.Fatalf("expired %s: %d winners, losers %v", key, len(wins), losses)
		}
		if err := old.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("renew of a lease taken over: %v", err)
		}
		if err := old.Release(ctx); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("release of a lease taken over: %v", err)
		}
		if _, err := a.Stat(ctx, key); err != nil {
			t.Fatalf("the stale release removed the winner's lease: %v", err)
		}
		if err := wins[0].Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
