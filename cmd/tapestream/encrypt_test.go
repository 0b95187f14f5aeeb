package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/scheduler"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/agestream"
)

// encKeys are an operator's age key and an escrow SSH key, as files, and
// a key that is neither's.
type encKeys struct {
	ageKey, agePub      string // identity file, public key ("age1...")
	escrow, escrowPub   string // OpenSSH private key file, public key file
	wrong               string // an age identity file of another key
	ageFP, escrowFP     string // fingerprints as the label shows them
	escrowType, wrongFP string
}

func newEncKeys(t *testing.T, dir string, rsaEscrow bool) *encKeys {
	t.Helper()
	k := &encKeys{ageKey: filepath.Join(dir, "operator.key"), escrow: filepath.Join(dir, "escrow"), escrowPub: filepath.Join(dir, "escrow.pub"), wrong: filepath.Join(dir, "wrong.key")}
	write := func(p string, b []byte) {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	write(k.ageKey, []byte(id.String()+"\n"))
	k.agePub = id.Recipient().String()
	other, _ := age.GenerateX25519Identity()
	write(k.wrong, []byte(other.String()+"\n"))
	var priv any
	var pub ssh.PublicKey
	if rsaEscrow {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv = rk
		pub, err = ssh.NewPublicKey(&rk.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		epub, epriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv = epriv
		if pub, err = ssh.NewPublicKey(epub); err != nil {
			t.Fatal(err)
		}
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	write(k.escrow, pem.EncodeToMemory(blk))
	write(k.escrowPub, []byte("# escrow key\n"+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))+" escrow@test\n"))
	for _, p := range []struct {
		file string
		fp   *string
	}{{k.ageKey, &k.ageFP}, {k.escrow, &k.escrowFP}, {k.wrong, &k.wrongFP}} {
		ids, err := agestream.ReadIdentityFile(p.file)
		if err != nil {
			t.Fatal(err)
		}
		*p.fp = ids[0].Description().Fingerprint
	}
	k.escrowType = pub.Type()
	return k
}

// TestEncryptedBackupRestoreEveryTypeAndCodec takes full, differential,
// incremental and copy sets of every codec while the workload writes,
// encrypted to two recipients (the full and the incremental: an operator
// age key and an escrow SSH key, ssh-rsa for gzip, ssh-ed25519 otherwise)
// or to one (the differential to the operator, the copy to the escrow),
// recovers a database from the full with tar, Debian's age and the codec
// CLI, and restores every chain with each identity alone; an identity that
// is not a set's recipient restores nothing.
func TestEncryptedBackupRestoreEveryTypeAndCodec(t *testing.T) {
	for _, codec := range []string{"zstd", "lz4", "gzip", "none"} {
		t.Run(codec, func(t *testing.T) {
			sets := t.TempDir()
			k := newEncKeys(t, sets, codec == "gzip")
			ls := newLiveStore(t, 6<<20)
			p := func(n string) string { return filepath.Join(sets, n+".tar") }
			both := encryptFlags{To: []string{k.agePub}, ToFile: []string{k.escrowPub}}
			enc := map[string]encryptFlags{"full": both, "differential": {To: []string{k.agePub}}, "incremental": both, "copy": {ToFile: []string{k.escrowPub}}}
			ls.startWriting()
			for _, typ := range []string{"full", "differential", "incremental", "copy"} {
				o := quietBackup(ls, typ, codec, p(typ))
				o.Encrypt = enc[typ]
				res, err := runBackup(context.Background(), o)
				if err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
				if e := res[0].Encryption; e == nil || len(e.Recipients) != len(enc[typ].To)+len(enc[typ].ToFile) {
					t.Fatalf("%s: encryption %+v", typ, e)
				}
				time.Sleep(50 * time.Millisecond)
			}
			ls.stopWriting(t)
			checkEncryptedWithCLI(t, p("full"), codec, k.escrow, k)

			to := filepath.Join(sets, "r")
			rest := func(group string, ids []string, chain ...string) error {
				var errb bytes.Buffer
				var srcs []string
				for _, c := range chain {
					srcs = append(srcs, p(c))
				}
				_, err := runRestore(context.Background(), restoreOpts{Sets: srcs, To: to, Group: group, Out: io.Discard, Err: &errb,
					Read: readMediaFlags{BlockSize: "64KiB"}, Identity: identityFlags{Files: ids}})
				return err
			}
			for _, c := range []struct {
				group string
				ids   []string
				chain []string
			}{
				{"RINCA", []string{k.ageKey}, []string{"full", "incremental"}},
				{"RINCB", []string{k.escrow}, []string{"full", "incremental"}},
				{"RDIFF", []string{k.ageKey}, []string{"full", "differential"}},
				{"RCOPY", []string{k.escrow}, []string{"copy"}},
			} {
				if err := rest(c.group, c.ids, c.chain...); err != nil {
					t.Fatalf("%s: %v", c.group, err)
				}
				proveRestored(t, to, c.group, nil)
			}
			// Each identity opens only the sets written to it: the escrow
			// key is no recipient of the differential, the operator's none
			// of the copy. Nothing is switched into place.
			for _, c := range []struct {
				group, id string
				chain     []string
				set       string
				fp        string
			}{
				{"RDIFFB", k.escrow, []string{"full", "differential"}, "differential", k.ageFP},
				{"RCOPYA", k.ageKey, []string{"copy"}, "copy", k.escrowFP},
			} {
				err := rest(c.group, []string{c.id}, c.chain...)
				l, lerr := restore.ReadLabel(restore.SetSource{Path: p(c.set)}, restore.Options{Sink: sinkOpts64K()})
				if lerr != nil {
					t.Fatal(lerr)
				}
				if !errors.Is(err, agestream.ErrNoIdentity) || !strings.Contains(err.Error(), l.SetID) || !strings.Contains(err.Error(), c.fp) {
					t.Fatalf("%s: restore with a key that is no recipient: %v", c.group, err)
				}
				if _, serr := os.Stat(filepath.Join(to, c.group)); !os.IsNotExist(serr) {
					t.Fatalf("%s: a failed restore left %v", c.group, serr)
				}
			}
			if codec == "zstd" {
				// the key named by the environment
				t.Setenv(agestream.IdentityFileEnv, k.escrow)
				if err := rest("RENV", nil, "full"); err != nil {
					t.Fatalf("identity from $%s: %v", agestream.IdentityFileEnv, err)
				}
				proveRestored(t, to, "RENV", nil)
			}
		})
	}
}

// checkEncryptedWithCLI recovers Mailbox1.edb from an encrypted set with
// tar, the age CLI (identity key) and the codec's CLI, and compares its
// BLAKE3 (b3sum) with the manifest's, which only a reader with the key
// sees: the set holds it sealed.
func checkEncryptedWithCLI(t *testing.T, set, codec, key string, k *encKeys) {
	t.Helper()
	dec := map[string]string{"zstd": "zstd -d -q", "lz4": "lz4 -d -q", "gzip": "gzip -d", "none": "cat"}[codec]
	for _, tool := range []string{"tar", "age", strings.Fields(dec)[0], "b3sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI", tool)
			}
			t.Logf("SKIPPING the recovery of %s with standard tools: %s is not installed", set, tool)
			return
		}
	}
	var stderr bytes.Buffer
	c := exec.Command("tar", "-tvf", set)
	c.Stderr = &stderr
	if out, err := c.Output(); err != nil || stderr.Len() > 0 || !strings.Contains(string(out), ".part000001.age") {
		t.Fatalf("tar -tvf %s: %v %s\n%s", set, err, stderr.String(), out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", set, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf: %v %s", err, out)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "databases", "Mailbox1.edb"+map[string]string{"zstd": ".zst", "lz4": ".lz4", "gzip": ".gz", "none": ""}[codec]+".part*.age"))
	sort.Strings(parts)
	if len(parts) == 0 {
		t.Fatalf("no encrypted parts of Mailbox1.edb in %s", set)
	}
	script := fmt.Sprintf(`for p in %s; do age -d -i %s "$p" || exit 1; done | %s > Mailbox1.edb && b3sum Mailbox1.edb`, strings.Join(parts, " "), key, dec)
	c = exec.Command("sh", "-c", script)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	ids, err := agestream.LoadIdentities([]string{k.ageKey})
	if err != nil {
		t.Fatal(err)
	}
	infos, _, err := restore.Verify(context.Background(), []restore.SetSource{{Path: set}}, restore.Options{Sink: sinkOpts64K(), Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(set)
	for _, f := range infos[0].Manifest.Files {
		if f.Name != "Mailbox1.edb" {
			continue
		}
		if f.BLAKE3 == "" || !strings.HasPrefix(string(out), f.BLAKE3) {
			t.Fatalf("tar+age+%s recovered Mailbox1.edb with %s; manifest says blake3 %s", codec, out, f.BLAKE3)
		}
		if bytes.Contains(raw, []byte(f.BLAKE3)) {
			t.Fatalf("the file digest is in the clear in %s", set)
		}
		return
	}
	t.Fatalf("no Mailbox1.edb in the manifest of %s", set)
}

// memberData returns where the data of the member named name starts in
// a set (the block after its ustar header).
func memberData(t *testing.T, set []byte, name string) int {
	t.Helper()
	first := bytes.Index(set, []byte(name))
	if first < 0 {
		t.Fatalf("no member %s in the set", name)
	}
	u := bytes.Index(set[first:], []byte("ustar\x0000"))
	if u < 0 {
		t.Fatalf("no ustar header for %s", name)
	}
	return (first+u)/512*512 + 512
}

// ageChunk returns the offset of sealed chunk i of the age file at data;
// i < 0 counts from the file's end (-2: the last full chunk but one).
func ageChunk(t *testing.T, set []byte, data, i int) int {
	t.Helper()
	h, err := agestream.ParseHeader(set[data:])
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		size, err := strconv.ParseInt(strings.Trim(string(set[data-512+124:data-512+136]), " \x00"), 8, 64)
		if err != nil {
			t.Fatal(err)
		}
		n := int((size - int64(h.PayloadOffset()) + agestream.SealedChunkSize - 1) / agestream.SealedChunkSize)
		if i += n; i < 1 {
			t.Fatalf("the member has %d sealed chunks", n)
		}
	}
	return data + h.PayloadOffset() + i*agestream.SealedChunkSize
}

// TestEncryptedCLI runs the binary on encrypted sets: verify without the
// key (exit 0 intact, 3 damaged, naming the file range a damaged chunk
// costs), --deep, restore without a key or with a wrong one (exit 2,
// naming the set and its recipients, nothing written), the key from the
// environment, copy without a key, a chunk swapped in from another set,
// list, and refused recipients.
func TestEncryptedCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dir := t.TempDir()
	k := newEncKeys(t, dir, false)
	run := func(want int, env []string, args ...string) (string, string) {
		t.Helper()
		cmd := cliCmd(dir, args...)
		cmd.Env = append(cmd.Env, env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("tapestream %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	bs := []string{"--block-size", "64KiB"}
	run(0, nil, "store", "init", "--dir", "store", "--log-size", "256KiB")
	run(0, nil, "store", "load", "--dir", "store", "--size", "6MiB")
	enc := []string{"--encrypt-to", k.agePub, "--encrypt-to-file", k.escrowPub}
	run(0, nil, append(append([]string{"backup", "--store", "store", "--type", "copy", "-o", "a.tar", "--progress", "never"}, bs...), enc...)...)
	run(0, nil, append(append([]string{"backup", "--store", "store", "--type", "copy", "-o", "b.tar", "--progress", "never"}, bs...), enc...)...)
	setA, err := restore.ReadLabel(restore.SetSource{Path: filepath.Join(dir, "a.tar")}, restore.Options{Sink: sinkOpts64K()})
	if err != nil {
		t.Fatal(err)
	}
	namesSet := func(msg string) {
		t.Helper()
		for _, want := range []string{setA.SetID, k.ageFP, k.escrowFP} {
			if !strings.Contains(msg, want) {
				t.Fatalf("%q does not name %s", msg, want)
			}
		}
	}

	// intact, without a key: the ciphertext is verified
	out, _ := run(0, nil, append([]string{"verify", "a.tar"}, bs...)...)
	if !strings.Contains(out, "OK (encrypted: structure and ciphertext verified") {
		t.Fatalf("verify without a key: %s", out)
	}
	out, _ = run(0, nil, append([]string{"verify", "--json", "a.tar"}, bs...)...)
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.OK || !rep.Sets[0].Sealed || len(rep.Sets[0].Encryption.Recipients) != 2 {
		t.Fatalf("verify --json: %v %s", err, out)
	}
	_, errs := run(2, nil, append([]string{"verify", "--deep", "a.tar"}, bs...)...)
	namesSet(errs)
	out, _ = run(0, nil, append([]string{"verify", "--deep", "--identity", k.ageKey, "a.tar"}, bs...)...)
	if !strings.HasSuffix(strings.TrimSpace(out), ": OK") {
		t.Fatalf("verify --deep: %s", out)
	}
	out, _ = run(0, nil, append([]string{"list", "a.tar"}, bs...)...)
	if !strings.Contains(out, "encrypted (age, 2 recipients): X25519 "+k.ageFP) || !strings.Contains(out, k.escrowType+" "+k.escrowFP) {
		t.Fatalf("list: %s", out)
	}

	// restore: no key, a wrong key (nothing written), the key from the
	// environment
	_, errs = run(2, nil, append([]string{"restore", "a.tar", "--to", "r", "--group", "R1"}, bs...)...)
	namesSet(errs)
	_, errs = run(2, nil, append([]string{"restore", "a.tar", "--to", "r", "--group", "R1", "--identity", k.wrong}, bs...)...)
	namesSet(errs)
	if !strings.Contains(errs, "tried X25519 "+k.wrongFP) {
		t.Fatalf("wrong key: %s", errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "r", "R1")); !os.IsNotExist(err) {
		t.Fatalf("a restore with a wrong key left r/R1: %v", err)
	}
	run(0, []string{agestream.IdentityFileEnv + "=" + k.escrow}, append([]string{"restore", "a.tar", "--to", "r", "--group", "R1"}, bs...)...)
	_, errs = run(2, []string{agestream.IdentityFileEnv + "=" + filepath.Join(dir, "no-such.key")}, append([]string{"restore", "a.tar", "--to", "r", "--group", "R2"}, bs...)...)
	if !strings.Contains(errs, agestream.IdentityFileEnv) {
		t.Fatalf("a missing key file named by the environment: %s", errs)
	}

	// a damaged sealed chunk: found without the key, with the same file
	// range as with it
	a, err := os.ReadFile(filepath.Join(dir, "a.tar"))
	if err != nil {
		t.Fatal(err)
	}
	member := "databases/Mailbox1.edb.zst.part000001.age"
	// a chunk of the member's end: the database's first pages (its
	// header, which a salvage needs) are at its start
	at := ageChunk(t, a, memberData(t, a, member), -2)
	bad := bytes.Clone(a)
	for i := at + 1000; i < at+1010; i++ {
		bad[i] ^= 0x5a
	}
	os.WriteFile(filepath.Join(dir, "bad.tar"), bad, 0o644)
	rangeRE := regexp.MustCompile(`Mailbox1\.edb: bytes \[\d+,\+\d+\)`)
	out, _ = run(3, nil, append([]string{"verify", "bad.tar"}, bs...)...)
	keyless := rangeRE.FindString(out)
	if keyless == "" || !strings.Contains(out, "ciphertext checksum mismatch") {
		t.Fatalf("verify of a damaged set without the key: %s", out)
	}
	out, _ = run(3, nil, append([]string{"verify", "--identity", k.ageKey, "bad.tar"}, bs...)...)
	if rangeRE.FindString(out) != keyless || !strings.Contains(out, "authentication") {
		t.Fatalf("verify with the key names %q, without %q:\n%s", rangeRE.FindString(out), keyless, out)
	}
	run(3, nil, append([]string{"restore", "bad.tar", "--to", "r", "--group", "R3", "--identity", k.ageKey}, bs...)...)
	out, _ = run(3, nil, append([]string{"restore", "bad.tar", "--to", "r", "--group", "R4", "--identity", k.ageKey, "--salvage"}, bs...)...)
	if !strings.Contains(out, "LOST") || !strings.Contains(out, strings.TrimPrefix(keyless, "Mailbox1.edb: ")) {
		t.Fatalf("salvage (verify named %q): %s", keyless, out)
	}

	// copy: byte for byte without a key; a damaged set is not copied
	out, _ = run(0, nil, "copy", "a.tar", "c.tar")
	if !strings.Contains(out, "structure and ciphertext verified") {
		t.Fatalf("copy: %s", out)
	}
	if c, _ := os.ReadFile(filepath.Join(dir, "c.tar")); !bytes.Equal(c, a) {
		t.Fatal("the copy differs from the set")
	}
	run(3, nil, "copy", "bad.tar", "d.tar")
	run(0, nil, "copy", "--identity", k.escrow, "a.tar", "e.tar")

	// a chunk of another set (same keys, same layout) in its place
	b, err := os.ReadFile(filepath.Join(dir, "b.tar"))
	if err != nil {
		t.Fatal(err)
	}
	bat := ageChunk(t, b, memberData(t, b, member), -2)
	swapped := bytes.Clone(a)
	copy(swapped[at:at+agestream.SealedChunkSize], b[bat:bat+agestream.SealedChunkSize])
	os.WriteFile(filepath.Join(dir, "swapped.tar"), swapped, 0o644)
	out, _ = run(3, nil, append([]string{"verify", "swapped.tar"}, bs...)...)
	if rangeRE.FindString(out) != keyless {
		t.Fatalf("a swapped chunk without the key: %s", out)
	}
	out, _ = run(3, nil, append([]string{"verify", "--identity", k.escrow, "swapped.tar"}, bs...)...)
	if rangeRE.FindString(out) != keyless {
		t.Fatalf("a swapped chunk with the key: %s", out)
	}

	// recipients that are refused, without echoing a private key
	_, errs = run(2, nil, "backup", "--store", "store", "--type", "copy", "-o", "x.tar", "--encrypt-to", strings.TrimSpace(firstLine(t, k.ageKey)))
	if strings.Contains(errs, "AGE-SECRET-KEY") {
		t.Fatalf("a private key was echoed: %s", errs)
	}
	pq, _ := age.GenerateHybridIdentity()
	_, errs = run(2, nil, "backup", "--store", "store", "--type", "copy", "-o", "x.tar", "--encrypt-to", pq.Recipient().String())
	if !strings.Contains(errs, "--encrypt-post-quantum") && !strings.Contains(errs, "post-quantum") {
		t.Fatalf("a post-quantum key without the flag: %s", errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); !os.IsNotExist(err) {
		t.Fatalf("a refused backup left x.tar: %v", err)
	}
}

func firstLine(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitN(string(b), "\n", 2)[0]
}

const encConfig = `
catalog = "catalog.db"

[[job]]
name = "mail"
store = "STORE"
groups = ["SG1"]
codec = "zstd:fastest"
block_size = "64KiB"
segment_size = "128KiB"
encrypt_to = ["AGEPUB"]
encrypt_to_file = "escrow.pub"

[job.schedule]
at = "02:00"
full = ["sun"]

[job.destination]
dir = "sets"
name = "{group}-{type}-{time}.tar.zst"
`

// TestSchedEncrypted: a job's recipients encrypt its sets; the catalog
// records it (and a rebuild from the sets without any key too, keeping
// the digests it had); the chain the catalog picks restores with either
// key; a recipient that does not parse fails the configuration.
func TestSchedEncrypted(t *testing.T) {
	keyDir := t.TempDir()
	k := newEncKeys(t, keyDir, false)
	e := newSchedEnv(t, strings.Replace(encConfig, "AGEPUB", k.agePub, 1))
	pub, _ := os.ReadFile(k.escrowPub)
	os.WriteFile(filepath.Join(e.dir, "escrow.pub"), pub, 0o644)
	sunday := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	for i := range 2 {
		e.load(2 << 20)
		e.now = sunday.Add(time.Duration(i) * 24 * time.Hour)
		if _, err := e.run("mail"); err != nil {
			t.Fatalf("night %d: %v\n%s", i, err, e.logs.String())
		}
	}
	sets, err := e.catalog().List(catalog.Filter{})
	if err != nil || len(sets) != 2 {
		t.Fatalf("catalog: %v %d sets", err, len(sets))
	}
	for _, s := range sets {
		if s.Encryption == nil || s.Encryption.Scheme != tapeformat.EncryptionAge || len(s.Encryption.Recipients) != 2 ||
			s.Encryption.Recipients[0].Fingerprint != k.ageFP || s.Encryption.Recipients[1].Fingerprint != k.escrowFP {
			t.Fatalf("set %s: encryption %+v", s.ID, s.Encryption)
		}
		l, err := restore.ReadLabel(restore.SetSource{Path: s.Location.Target}, restore.Options{Sink: sinkOpts64K()})
		if err != nil || l.Encryption == nil {
			t.Fatalf("set %s: label %v %+v", s.ID, err, l.Encryption)
		}
	}
	// a rebuild reads the sets without any key
	var out bytes.Buffer
	rebuilt := filepath.Join(e.dir, "rebuilt.db")
	if err := runCatalogRebuild(context.Background(), catalogOpts{Config: e.cfgPath, Catalog: rebuilt, BlockSize: "64KiB", Out: &out, Err: &out}, nil); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	rcat, err := catalog.Open(rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	rsets, err := rcat.List(catalog.Filter{})
	if err != nil || len(rsets) != 2 || rsets[0].Encryption == nil || len(rsets[0].Encryption.Recipients) != 2 || rsets[0].Status != catalog.StatusComplete {
		t.Fatalf("rebuilt catalog: %v %+v\n%s", err, rsets, out.String())
	}
	// the rebuild merged into the catalog keeps the digests the scan cannot read
	if err := runCatalogRebuild(context.Background(), catalogOpts{Config: e.cfgPath, BlockSize: "64KiB", Out: &out, Err: &out}, nil); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	merged, _ := e.catalog().List(catalog.Filter{})
	for _, s := range merged {
		for _, f := range s.Files {
			if f.BLAKE3 == "" {
				t.Fatalf("set %s file %s lost its digest in the merge", s.ID, f.Name)
			}
		}
	}
	for _, id := range []string{k.ageKey, k.escrow} {
		group := "R" + strings.ToUpper(filepath.Base(id)[:3])
		to := filepath.Join(e.dir, "restore-"+group)
		var errb bytes.Buffer
		o := restoreOpts{Catalog: filepath.Join(e.dir, "catalog.db"), FromGroup: "SG1", Group: group, To: to, Out: &bytes.Buffer{}, Err: &errb,
			Read: readMediaFlags{BlockSize: "64KiB"}, Identity: identityFlags{Files: []string{id}}}
		res, err := runRestore(context.Background(), o)
		if err != nil || len(res[0].Sets) != 2 {
			t.Fatalf("restore with %s: %v\n%s", id, err, errb.String())
		}
		proveRestored(t, to, group, nil)
	}
	// a configuration whose recipient does not parse is refused at load
	bad := strings.Replace(encConfig, "AGEPUB", "age1notakey", 1)
	if _, err := scheduler.ParseConfig(strings.Replace(bad, "STORE", e.dir, 1), e.dir); err == nil || !strings.Contains(err.Error(), "encrypt_to") {
		t.Fatalf("bad recipient: %v", err)
	}
	secret := strings.TrimSpace(firstLine(t, k.ageKey))
	if _, err := scheduler.ParseConfig(strings.Replace(strings.Replace(encConfig, "AGEPUB", secret, 1), "STORE", e.dir, 1), e.dir); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("a private key as recipient: %v", err)
	}
}
