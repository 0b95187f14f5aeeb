// Package workload is tapestream's deterministic mail workload and its
// verifiable model. (Full documentation below is being written.)
package workload
