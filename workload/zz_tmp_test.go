package workload
import "testing"
func TestCompoTmp(t *testing.T){
	for seed := uint64(1); seed <= 3; seed++ {
		g := NewGenerator(seed)
		var raw, sep, big, natt, nin int
		for m := uint64(1); raw+sep < 64<<20; m++ {
			raw += len(g.appendRaw(nil, 0, m))
			for _, a := range g.plan(0, m) { if a.inline { nin += a.size } else { sep += a.size; natt++ }; if a.size > 1<<20 { big += a.size } }
		}
		t.Logf("seed %d raw %d sep %d (n=%d) inline %d big %d", seed, raw, sep, natt, nin, big)
	}
}
