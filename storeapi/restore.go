package storeapi

import (
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/restore"
)

// RestoreRequest restores backup sets that are already on the server host
// into a new recovery storage group the server then serves:
// POST /v1/restore. Sets are paths relative to the server's restore
// directory (Config.RestoreDir), full first.
type RestoreRequest struct {
	Sets     []string `json:"sets"`
	Group    string   `json:"group"`
	UntilGen uint32   `json:"until_gen,omitempty"`
	// Replace restores into a group the server owns: it is dismounted,
	// restored (its later logs replayed: point of failure), recovered and
	// mounted again. A failed restore mounts the old group again.
	Replace bool `json:"replace,omitempty"`
}

// RestoreResponse describes the restored, recovered and mounted group.
type RestoreResponse struct {
	Result *restore.Result  `json:"result"`
	Group  engine.GroupInfo `json:"group"`
}
