package tapeformat

// Keys of Label.Extra that readers act on (FORMAT.md, section 7). An
// incremental or differential set lists its logs before it writes
// anything, so its label carries its log range (decimal generations): a
// restore checks a chain's links from the labels before it writes
// anything. Full and copy sets, whose range is known only at their end,
// and sets written before these keys existed leave them out; the
// manifest's info carries every set's range.
const (
	ExtraLogFirst = "log_first_generation"
	ExtraLogLast  = "log_last_generation"
)
