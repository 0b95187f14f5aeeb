package workload

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
)

// Message flags stored in folder index entries.
const (
	FlagRead      = 1 << 0
	FlagFlagged   = 1 << 1
	FlagAnswered  = 1 << 2
	FlagForwarded = 1 << 3
	FlagImportant = 1 << 4
)

const (
	folderInbox  = 0
	folderSent   = 1
	folderDrafts = 3
)

// normalize fills defaults and validates w.
func (w Workload) normalize() (Workload, error) {
	if w.Version == 0 {
		w.Version = Version
	}
	if w.Version != Version {
		return w, fmt.Errorf("workload: unsupported version %d (this build generates version %d)", w.Version, Version)
	}
	if len(w.Databases) == 0 {
		w.Databases = slices.Clone(DefaultDatabases)
	}
	if len(w.Databases) > 255 {
		return w, fmt.Errorf("workload: too many databases (%d)", len(w.Databases))
	}
	if w.Streams < 1 || w.Streams > 9999 {
		return w, fmt.Errorf("workload: streams must be in 1..9999, got %d", w.Streams)
	}
	return w, nil
}

func (w Workload) encode() []byte {
	b, err := json.Marshal(w)
	if err != nil {
		panic(err)
	}
	return b
}

func (w Workload) equal(o Workload) bool {
	return w.Version == o.Version && w.Seed == o.Seed && w.Streams == o.Streams && slices.Equal(w.Databases, o.Databases)
}

// ---- keys ----

func appendDec(dst []byte, v uint64, width int) []byte {
	var b [20]byte
	i := len(b)
	for v > 0 || i == len(b) {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	for n := len(b) - i; n < width; n++ {
		dst = append(dst, '0')
	}
	return append(dst, b[i:]...)
}

func seqKey(stream int) []byte { return appendDec([]byte("stream/"), uint64(stream), 4) }

func appendStreamPrefix(dst []byte, stream int) []byte {
	dst = append(dst, 's')
	dst = appendDec(dst, uint64(stream), 4)
	return append(dst, '/')
}

func msgKey(stream int, msg uint64) []byte {
	return appendDec(appendStreamPrefix(make([]byte, 0, 24), stream), msg, 12)
}

func attKey(stream int, msg uint64, k int) []byte {
	b := append(msgKey(stream, msg), '/')
	return appendDec(b, uint64(k), 2)
}

func folderDefKey(stream, folder int) []byte {
	b := append(appendStreamPrefix(make([]byte, 0, 24), stream), 'f')
	return appendDec(b, uint64(folder), 2)
}

func folderEntryKey(stream, folder int, msg uint64) []byte {
	b := append(folderDefKey(stream, folder), '/')
	return appendDec(b, msg, 12)
}

func parseDec(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// parseKey splits a workload key of the messages/attachments/folders tables.
// Shapes: "sSSSS/MMMMMMMMMMMM" (message), "sSSSS/MMMMMMMMMMMM/KK"
// (attachment), "sSSSS/fFF" (folder), "sSSSS/fFF/MMMMMMMMMMMM" (entry).
type parsedKey struct {
	kind   int // keyMsg, keyAtt, keyFolder, keyEntry
	stream int
	msg    uint64
	n      int // attachment index or folder
}

const (
	keyBad = iota
	keyMsg
	keyAtt
	keyFolder
	keyEntry
)

func parseKey(k []byte) parsedKey {
	if len(k) < 6 || k[0] != 's' || k[5] != '/' {
		return parsedKey{}
	}
	s, ok := parseDec(k[1:5])
	if !ok {
		return parsedKey{}
	}
	p := parsedKey{stream: int(s)}
	r := k[6:]
	switch {
	case len(r) == 12 || len(r) == 15 && r[12] == '/':
		m, ok := parseDec(r[:12])
		if !ok {
			return parsedKey{}
		}
		p.msg = m
		p.kind = keyMsg
		if len(r) == 15 {
			a, ok := parseDec(r[13:])
			if !ok {
				return parsedKey{}
			}
			p.kind, p.n = keyAtt, int(a)
		}
	case len(r) >= 3 && r[0] == 'f':
		f, ok := parseDec(r[1:3])
		if !ok {
			return parsedKey{}
		}
		p.n = int(f)
		switch {
		case len(r) == 3:
			p.kind = keyFolder
		case len(r) == 16 && r[3] == '/':
			m, ok := parseDec(r[4:])
			if !ok {
				return parsedKey{}
			}
			p.kind, p.msg = keyEntry, m
		default:
			return parsedKey{}
		}
	default:
		return parsedKey{}
	}
	return p
}

// ---- values ----

func folderName(db, folder int) string {
	if db == 0 {
		return mailboxFolders[folder]
	}
	return "Public Folders/" + publicFolders[folder]
}

func folderDefValue(stream, db, folder int) []byte {
	b := []byte("name=")
	b = append(b, folderName(db, folder)...)
	b = append(b, ";id="...)
	b = appendDec(b, uint64(folder), 2)
	b = append(b, ";stream="...)
	return appendDec(b, uint64(stream), 4)
}

// entryValue is the 24-byte folder index entry: msg, receive time, flags,
// folder, number of separately stored attachments, 2 reserved bytes.
func (g *Generator) entryValue(stream int, msg uint64, m *msgState) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], msg)
	binary.BigEndian.PutUint64(b[8:], uint64(g.msgTime(stream, msg)))
	binary.BigEndian.PutUint32(b[16:], m.flags)
	b[20] = m.folder
	b[21] = m.nAtt
	return b
}

func seqValue(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// ---- model ----

type msgState struct {
	db     uint8
	folder uint8
	nAtt   uint8
	seen   uint8 // Verify bookkeeping
	flags  uint32
}

const (
	seenMsg   = 1 << 0
	seenEntry = 1 << 1
	seenAtt0  = 1 << 2 // attachment k sets seenAtt0 << k
)

// streamState is the model of one stream after seq transactions.
type streamState struct {
	g     *Generator
	w     *Workload
	id    int
	seq   uint64
	next  uint64 // last allocated message number
	live  []uint64
	msgs  map[uint64]*msgState
	fseen []uint16 // Verify bookkeeping: folder definitions seen, per db
}

func newStreamState(g *Generator, w *Workload, id int) *streamState {
	return &streamState{g: g, w: w, id: id, msgs: make(map[uint64]*msgState)}
}

type opKind uint8

const (
	opFolderDef opKind = iota
	opPutMsg
	opPutAtt
	opPutEntry
	opDelMsg
	opDelAtt
	opDelEntry
)

// op is one write of a transaction; values are materialised later.
type op struct {
	kind   opKind
	db     uint8
	folder uint8
	k      uint8 // attachment index
	msg    uint64
	state  msgState // snapshot for opPutEntry
}

// step advances st by transaction seq (which must be st.seq+1), appending
// the transaction's writes to ops if ops is non-nil.
func (st *streamState) step(seq uint64, ops *[]op) {
	if seq != st.seq+1 {
		panic("workload: step out of order")
	}
	st.seq = seq
	emit := func(o op) {
		if ops != nil {
			*ops = append(*ops, o)
		}
	}
	if seq == 1 {
		for db := range st.w.Databases {
			for f := range numFolders {
				emit(op{kind: opFolderDef, db: uint8(db), folder: uint8(f)})
			}
		}
		return
	}
	ndb := len(st.w.Databases)
	r := newRNG(st.w.Seed, tagTxn, uint64(st.id), seq)
	nops := 1
	if r.next()&7 == 0 {
		nops += 1 + r.intn(3)
	}
	for range nops {
		p := r.intn(100)
		if len(st.live) == 0 {
			p = 0
		}
		switch {
		case p < 55: // insert
			st.next++
			msg := st.next
			m := &msgState{}
			if ndb > 1 && r.chance(15) {
				m.db = uint8(1 + r.intn(ndb-1))
				m.folder = uint8(r.intn(numFolders))
			} else {
				switch x := r.intn(100); {
				case x < 60:
					m.folder = folderInbox
				case x < 80:
					m.folder = folderSent
				case x < 83:
					m.folder = folderDrafts
				default:
					m.folder = uint8(4 + r.intn(numFolders-4))
				}
			}
			if m.folder == folderSent || r.chance(30) {
				m.flags = FlagRead
			}
			m.nAtt = uint8(st.g.separateAttachments(st.id, msg))
			st.live = append(st.live, msg)
			st.msgs[msg] = m
			emit(op{kind: opPutMsg, db: m.db, msg: msg})
			for k := range m.nAtt {
				emit(op{kind: opPutAtt, db: m.db, msg: msg, k: k})
			}
			emit(op{kind: opPutEntry, db: m.db, folder: m.folder, msg: msg, state: *m})
		case p < 75: // flag change
			msg := st.live[r.intn(len(st.live))]
			m := st.msgs[msg]
			bit := 0
			if !r.chance(60) {
				bit = 1 + r.intn(4)
			}
			m.flags ^= 1 << bit
			emit(op{kind: opPutEntry, db: m.db, folder: m.folder, msg: msg, state: *m})
		case p < 85: // move
			msg := st.live[r.intn(len(st.live))]
			m := st.msgs[msg]
			emit(op{kind: opDelEntry, db: m.db, folder: m.folder, msg: msg})
			m.folder = uint8((int(m.folder) + 1 + r.intn(numFolders-1)) % numFolders)
			emit(op{kind: opPutEntry, db: m.db, folder: m.folder, msg: msg, state: *m})
		default: // delete
			i := r.intn(len(st.live))
			msg := st.live[i]
			m := st.msgs[msg]
			emit(op{kind: opDelMsg, db: m.db, msg: msg})
			for k := range m.nAtt {
				emit(op{kind: opDelAtt, db: m.db, msg: msg, k: k})
			}
			emit(op{kind: opDelEntry, db: m.db, folder: m.folder, msg: msg})
			last := st.live[len(st.live)-1]
			st.live[i] = last
			st.live = st.live[:len(st.live)-1]
			delete(st.msgs, msg)
		}
	}
}

// replay advances st to seq without materialising any content.
func (st *streamState) replay(seq uint64) {
	for st.seq < seq {
		st.step(st.seq+1, nil)
	}
}

// write is one materialised write.
type write struct {
	db, table string
	key       []byte
	value     []byte // nil: delete
}

// materialize turns ops into writes, generating content. It returns the
// writes and the number of message+attachment bytes.
func (st *streamState) materialize(ops []op, ws []write) ([]write, int64) {
	var n int64
	for _, o := range ops {
		db := st.w.Databases[o.db]
		switch o.kind {
		case opFolderDef:
			ws = append(ws, write{db, TableFolders, folderDefKey(st.id, int(o.folder)), folderDefValue(st.id, int(o.db), int(o.folder))})
		case opPutMsg:
			v := st.g.appendRaw(nil, st.id, o.msg)
			n += int64(len(v))
			ws = append(ws, write{db, TableMessages, msgKey(st.id, o.msg), v})
		case opPutAtt:
			v := st.g.appendAttachment(nil, st.id, o.msg, int(o.k))
			n += int64(len(v))
			ws = append(ws, write{db, TableAttachments, attKey(st.id, o.msg, int(o.k)), v})
		case opPutEntry:
			ws = append(ws, write{db, TableFolders, folderEntryKey(st.id, int(o.folder), o.msg), st.g.entryValue(st.id, o.msg, &o.state)})
		case opDelMsg:
			ws = append(ws, write{db, TableMessages, msgKey(st.id, o.msg), nil})
		case opDelAtt:
			ws = append(ws, write{db, TableAttachments, attKey(st.id, o.msg, int(o.k)), nil})
		case opDelEntry:
			ws = append(ws, write{db, TableFolders, folderEntryKey(st.id, int(o.folder), o.msg), nil})
		}
	}
	ws = append(ws, write{st.w.Databases[0], TableMeta, seqKey(st.id), seqValue(st.seq)})
	return ws, n
}

func applyWrites(tx Tx, ws []write) error {
	for _, w := range ws {
		var err error
		if w.value == nil {
			err = tx.Delete(w.db, w.table, w.key)
		} else {
			err = tx.Put(w.db, w.table, w.key, w.value)
		}
		if err != nil {
			return fmt.Errorf("workload: %s %s/%s %q: %w", map[bool]string{true: "delete", false: "put"}[w.value == nil], w.db, w.table, w.key, err)
		}
	}
	return nil
}
