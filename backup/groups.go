package backup

import (
	"context"
	"sync"

	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/source"
)

// Request is one storage group's backup in a RunGroups call.
type Request struct {
	Group   string
	Target  string
	Options Options
	// Retry, if set, is asked after a failed attempt whether to try again
	// and with what (the scheduler promotes an incremental the engine
	// refused for missing logs to a full, with another file name).
	Retry func(err error, prev Request) (next Request, ok bool)
}

// Outcome is what became of a Request: the request as last attempted, its
// result (also on some failures: a set that is complete but whose logs were
// not truncated) and its error.
type Outcome struct {
	Request Request
	Result  *Result
	Err     error
}

// RunGroups backs up several storage groups through one source, each in
// its own session and set. Groups run concurrently, except that requests
// bound for the same tape drive run one after the other, in order (one
// drive, one writer). One group's failure never stops another's.
func RunGroups(ctx context.Context, src source.Source, reqs []Request) []Outcome {
	out := make([]Outcome, len(reqs))
	// Requests that share a drive form one lane; every other request is a
	// lane of its own.
	lanes := map[string][]int{}
	var order []string
	for i, r := range reqs {
		key := "#" + string(rune(i))
		if media.IsTape(r.Target) {
			key = "tape:" + media.BaseTarget(r.Target)
		}
		if _, ok := lanes[key]; !ok {
			order = append(order, key)
		}
		lanes[key] = append(lanes[key], i)
	}
	var wg sync.WaitGroup
	for _, key := range order {
		wg.Add(1)
		go func(idx []int) {
			defer wg.Done()
			for _, i := range idx {
				out[i] = runOne(ctx, src, reqs[i])
			}
		}(lanes[key])
	}
	wg.Wait()
	return out
}

func runOne(ctx context.Context, src source.Source, r Request) Outcome {
	for {
		res, err := Run(ctx, src, r.Group, r.Target, r.Options)
		if err == nil || res != nil || r.Retry == nil || ctx.Err() != nil {
			return Outcome{Request: r, Result: res, Err: err}
		}
		next, ok := r.Retry(err, r)
		if !ok {
			return Outcome{Request: r, Err: err}
		}
		next.Retry = nil // one retry: a promoted backup is not promoted again
		r = next
	}
}
