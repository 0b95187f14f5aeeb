//go:build !linux

package scheduler

// freeSpace is not known outside Linux: the check is skipped.
func freeSpace(dir string) (int64, error) { return -1, nil }
