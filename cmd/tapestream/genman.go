package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func init() { extraCommands = append(extraCommands, newGenManCmd) }

// manDate is the date in the pages' header. A fixed date keeps `make man`
// reproducible (the same binary gives the same pages, byte for byte);
// SOURCE_DATE_EPOCH, which distribution builds set, takes precedence.
var manDate = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// newGenManCmd is the hidden `gen-man DIR` that `make man` runs: the pages
// come from the commands themselves (cobra's doc package), so a flag can
// never be missing from its page. It is a subcommand rather than a
// separate program because the command tree lives in package main.
func newGenManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man pages (tapestream.1, tapestream-backup.1, ...) into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := genMan(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d man pages to %s\n", n, args[0])
			return nil
		},
	}
}

// genMan writes one page per command into dir and returns how many. It
// builds a fresh command tree, not the running one, so that the pages are
// the same however gen-man was invoked; the completion command cobra adds
// at run time is added here too, since users have it.
func genMan(dir string) (int, error) {
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	root.Long = manOverview
	header := &doc.GenManHeader{Section: "1", Source: "tapestream", Manual: "tapestream manual"}
	if os.Getenv("SOURCE_DATE_EPOCH") == "" {
		header.Date = &manDate
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return 0, fmt.Errorf("man pages in %s: %w", dir, err)
	}
	n := 0
	var count func(c *cobra.Command)
	count = func(c *cobra.Command) {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			return
		}
		n++
		for _, sub := range c.Commands() {
			count(sub)
		}
	}
	count(root)
	return n, nil
}

// manOverview is the description of tapestream(1), the page the systemd
// units name: what the commands are for, then the sections a packager's
// page has. The exit codes are the README's (TestGenMan compares them).
const manOverview = `tapestream takes online, streaming backups of an ESE-style transactional store: a storage
group's databases and logs are copied while the store keeps running, into backup sets. A set is a
POSIX pax archive of compressed chunks, each with a CRC32C, that tar and the codec's own tool can
also read. Sets go to files, tapes (labelled cartridges, changers), S3 or stdout.

**tapestream backup**, **restore**, **verify**, **list**, **copy** and **truncate** work on sets.
**tapestream run** (from cron or a systemd timer) and **tapestream daemon** run the jobs of a
configuration file; **status** says each morning what every storage group can be restored to;
**config check** checks a configuration; **catalog** lists and rebuilds the catalog of sets and
cartridges; **tape** labels, loads and shows cartridges; **store** works on a store (init, check,
header, logs, mount, dismount, recover, serve). Each command has its page, tapestream-COMMAND(1).

# EXIT STATUS
**0**
: success.

**1**
: a failure not listed below.

**2**
: a usage error (bad flags or arguments), a configuration error, or an encrypted set read without its key.

**3**
: corruption: a page, log or set failed verification; **store check** or **verify** found problems; **restore --salvage** lost data.

**4**
: the destination failed or is full (no next volume); a wrong cartridge.

**5**
: busy: a backup is in progress on the group (-505), or the store is locked by another process.

**6**
: interrupted (SIGINT/SIGTERM): the session was aborted and no set was left.

**7**
: **run**: the job's storage group is being backed up by another run.

# FILES
*/etc/tapestream/jobs.toml*
: the job configuration of **run**, **daemon** and **status** (**--config**); every key is listed in the configuration reference, docs/config.md in the source.

*/var/lib/tapestream/catalog.db*
: the catalog (the configuration's **catalog**), which **catalog rebuild** recreates from the media.

# ENVIRONMENT
**TAPESTREAM_AGE_IDENTITY_FILE**
: the age identity (or OpenSSH private key) that decrypts encrypted sets, when **--identity** is not given.

**TAPESTREAM_VOLUME**, **TAPESTREAM_VOLUME_LABEL**, **TAPESTREAM_SET_ID**, **TAPESTREAM_DEVICE**
: set for the **--next-volume-cmd** (**next_volume_cmd**) command: the volume wanted and the cartridge's label.

**TAPESTREAM_JOB**, **TAPESTREAM_STATUS**, **TAPESTREAM_LEVEL**, **TAPESTREAM_ERROR**, **TAPESTREAM_SETS**
: set for the **notify_cmd** command after each job.
`
