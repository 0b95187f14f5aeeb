package workload

import (
	"encoding/base64"
	"encoding/binary"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Content tuning knobs. Changing any of them changes generated content and
// therefore requires bumping Version.
const (
	attachPct       = 10 // % of messages with attachments
	attachInlinePct = 15 // % of small primary attachments base64-inlined in the MIME body
	attachInlineMax = 64 << 10
	attachMin       = 10800   // Pareto scale (minimum size of the primary attachment)
	attachMax       = 4 << 20 // cap
	attachAlpha     = 1.5     // Pareto shape (heavy tail)
	replyPct        = 75      // % of messages quoting an earlier one
	quoteMorePct    = 65      // % chance of each further quote level
	maxQuoteDepth   = 3       //
	quoteWindow     = 4       // quoted message is among the previous quoteWindow of the stream
	zipfS           = 1.05    // Zipf exponent of word frequencies
	stockPct        = 50      // % of sentences taken from stockSentences
	lineWidth       = 76      // text wrap column
)

var (
	vocab        = buildVocabulary()
	zipfTable    = buildZipf(len(vocab), zipfS)
	disclaimersC = crlfAll(disclaimers)
)

func crlfAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ReplaceAll(s, "\n", "\r\n")
	}
	return out
}

// buildZipf returns a 64K-entry table mapping a uniform 16-bit value to a word
// rank with probability ~ 1/(rank+1)^s.
func buildZipf(n int, s float64) []uint16 {
	w := make([]float64, n)
	total := 0.0
	for i := range w {
		w[i] = 1 / math.Pow(float64(i+1), s)
		total += w[i]
	}
	t := make([]uint16, 1<<16)
	acc, j := 0.0, 0
	for i := range w {
		acc += w[i] / total
		end := int(acc * (1 << 16))
		if i == n-1 {
			end = 1 << 16
		}
		for ; j < end && j < len(t); j++ {
			t[j] = uint16(i)
		}
	}
	return t
}

func (r *rng) word() string { return vocab[zipfTable[r.next()>>48]] }

// Generator produces deterministic mail content. It is immutable and safe
// for concurrent use.
type Generator struct {
	seed   uint64
	org    string // the organisation's own domain
	tenant string // organisation GUID
}

// Message is one generated message.
type Message struct {
	Raw         []byte   // RFC 5322 / MIME text, stored in the messages table
	Attachments [][]byte // raw attachments stored separately in the attachments table
}

// NewGenerator returns a generator for seed.
func NewGenerator(seed uint64) *Generator {
	r := newRNG(seed, tagStream, math.MaxUint64)
	g := &Generator{seed: seed, org: domains[r.intn(len(domains))]}
	g.tenant = string(appendGUID(nil, &r))
	return g
}

// Message generates message msg (>= 1) of stream. The result depends only on
// (seed, stream, msg).
func (g *Generator) Message(stream int, msg uint64) *Message {
	m := &Message{Raw: g.appendRaw(nil, stream, msg)}
	n := g.separateAttachments(stream, msg)
	for k := range n {
		m.Attachments = append(m.Attachments, g.appendAttachment(nil, stream, msg, k))
	}
	return m
}

// WriteCorpus writes generated messages (stream 0, msg 1, 2, …: each
// message's Raw followed by its attachments) to w until at least size bytes
// were written. It returns the number of bytes written.
func (g *Generator) WriteCorpus(w io.Writer, size int64) (int64, error) {
	var n int64
	var buf []byte
	for msg := uint64(1); n < size; msg++ {
		buf = g.appendRaw(buf[:0], 0, msg)
		for k := range g.separateAttachments(0, msg) {
			buf = g.appendAttachment(buf, 0, msg, k)
		}
		c, err := w.Write(buf)
		n += int64(c)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ---- attachment plan ----

type attPlan struct {
	size   int
	inline bool
	typ    int
	name   uint64 // random bits for the file name
}

// plan returns the attachments of a message. It is cheap (no content is
// generated), so the model can use it.
//
// Which messages carry an attachment and the size of the primary attachment
// follow low-discrepancy sequences per stream (a Beatty sequence with rate
// attachPct/100 and a Weyl sequence over the attachment ordinal), so that even
// a few hundred consecutive messages sample the heavy-tailed size distribution
// evenly and the corpus compression ratio is stable across seeds.
func (g *Generator) plan(stream int, msg uint64) []attPlan {
	h := mix64(g.seed ^ mix64(uint64(stream)+tagPlan<<56))
	theta := float64(h>>11) / (1 << 53)
	rate := float64(attachPct) / 100
	// Explicit float64 conversions prevent fused multiply-add, keeping the
	// results identical on every architecture.
	j := math.Floor(float64(float64(msg)*rate) + theta)
	if j == math.Floor(float64(float64(msg-1)*rate)+theta) {
		return nil
	}
	r := newRNG(g.seed, tagPlan, uint64(stream), msg)
	u := math.Mod(float64(j*0.6180339887498949)+float64(h&0xffff)/65536, 1)
	sz := float64(attachMin) / math.Pow(1-u, 1/attachAlpha)
	if sz > attachMax {
		sz = attachMax
	}
	p := []attPlan{{size: int(sz), inline: sz <= attachInlineMax && r.chance(attachInlinePct), typ: r.intn(len(attachmentTypes)), name: r.next()}}
	if r.chance(10) {
		// Extra small items (logos, scanned signatures), inlined.
		for range 1 + r.intn(2) {
			p = append(p, attPlan{size: 2<<10 + r.intn(16<<10), inline: true, typ: 4 + r.intn(2), name: r.next()})
		}
	}
	return p
}

// separateAttachments returns the number of attachments stored separately.
func (g *Generator) separateAttachments(stream int, msg uint64) int {
	n := 0
	for _, a := range g.plan(stream, msg) {
		if !a.inline {
			n++
		}
	}
	return n
}

// attachmentBytes appends the raw content of attachment i of the plan.
func (g *Generator) attachmentBytes(dst []byte, stream int, msg uint64, i, size int) []byte {
	r := newRNG(g.seed, tagAttach, uint64(stream), msg, uint64(i))
	off := len(dst)
	dst = grow(dst, size)
	b := dst[off:]
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, r.next())
		b = b[8:]
	}
	if len(b) > 0 {
		var t [8]byte
		binary.LittleEndian.PutUint64(t[:], r.next())
		copy(b, t[:])
	}
	return dst
}

// appendAttachment appends the k-th separately stored attachment.
func (g *Generator) appendAttachment(dst []byte, stream int, msg uint64, k int) []byte {
	for i, a := range g.plan(stream, msg) {
		if a.inline {
			continue
		}
		if k == 0 {
			return g.attachmentBytes(dst, stream, msg, i, a.size)
		}
		k--
	}
	panic("workload: attachment index out of range")
}

func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) < n {
		nb := make([]byte, len(dst), 2*cap(dst)+n)
		copy(nb, dst)
		dst = nb
	}
	return dst[:len(dst)+n]
}

// ---- people, dates, ids ----

type person struct {
	first, last, domain string
}

func (g *Generator) randPerson(r *rng) person {
	p := person{first: firstNames[r.intn(len(firstNames))], last: lastNames[r.intn(len(lastNames))]}
	if r.chance(45) {
		p.domain = g.org
	} else {
		p.domain = domains[r.intn(len(domains))]
	}
	return p
}

func (g *Generator) owner(stream int) person {
	r := newRNG(g.seed, tagStream, uint64(stream))
	p := g.randPerson(&r)
	p.domain = g.org
	return p
}

func appendAddr(dst []byte, p person) []byte {
	dst = append(dst, '"')
	dst = append(dst, p.first...)
	dst = append(dst, ' ')
	dst = append(dst, p.last...)
	dst = append(dst, "\" <"...)
	dst = appendEmail(dst, p)
	return append(dst, '>')
}

func appendEmail(dst []byte, p person) []byte {
	dst = appendLower(dst, p.first)
	dst = append(dst, '.')
	dst = appendLower(dst, p.last)
	dst = append(dst, '@')
	return append(dst, p.domain...)
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

const dateBase = 1767225600 // 2026-01-01T00:00:00Z

// msgTime is the receive time of a message: ~10 minutes apart per stream.
func (g *Generator) msgTime(stream int, msg uint64) int64 {
	h := mix64(g.seed ^ uint64(stream)<<40 ^ msg ^ tagDate<<56)
	return dateBase + int64(stream)*37 + int64(msg)*600 + int64(h%600)
}

func appendDate(dst []byte, unix int64) []byte {
	return time.Unix(unix, 0).UTC().AppendFormat(dst, "Mon, 2 Jan 2006 15:04:05 +0000")
}

const hexUpper = "0123456789ABCDEF"

func appendHex(dst []byte, r *rng, n int) []byte {
	for n > 0 {
		v := r.next()
		for i := 0; i < 16 && n > 0; i++ {
			dst = append(dst, hexUpper[v&15])
			v >>= 4
			n--
		}
	}
	return dst
}

func appendGUID(dst []byte, r *rng) []byte {
	const lower = "0123456789abcdef"
	v1, v2 := r.next(), r.next()
	for i := 0; i < 32; i++ {
		switch i {
		case 8, 12, 16, 20:
			dst = append(dst, '-')
		}
		v := &v1
		if i >= 16 {
			v = &v2
		}
		dst = append(dst, lower[*v&15])
		*v >>= 4
	}
	return dst
}

// appendB64Random appends n base64 characters of random data.
func appendB64Random(dst []byte, r *rng, n int) []byte {
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for n > 0 {
		v := r.next()
		for i := 0; i < 10 && n > 0; i++ {
			dst = append(dst, std[v&63])
			v >>= 6
			n--
		}
	}
	return dst
}

var exchangeServers = func() []string {
	r := newRNG(0, 0xE)
	s := make([]string, 48)
	for i := range s {
		s[i] = "DM" + strconv.Itoa(3+r.intn(6)) + "PR" + strconv.Itoa(10+r.intn(10)) + "MB" + strconv.Itoa(1000+r.intn(9000))
	}
	return s
}()

func (g *Generator) messageID(dst []byte, stream int, msg uint64) []byte {
	r := newRNG(g.seed, tagHeader, uint64(stream), msg, 0x1D)
	srv := exchangeServers[r.intn(len(exchangeServers))]
	dst = append(dst, '<')
	dst = append(dst, srv...)
	dst = appendHex(dst, &r, 28)
	dst = append(dst, '@')
	dst = append(dst, srv...)
	dst = append(dst, ".namprd"...)
	dst = strconv.AppendInt(dst, int64(10+r.intn(10)), 10)
	dst = append(dst, ".prod.outlook.com>"...)
	return dst
}

// ---- text ----

// text is the own text of one message (without quotes), with the paragraph
// boundaries needed for the HTML rendering.
type text struct {
	from, to person
	subject  []byte
	buf      []byte   // CRLF-separated lines, paragraphs separated by an empty line
	paras    [][2]int // [start,end) of each paragraph in buf
}

func (g *Generator) subject(dst []byte, stream int, msg uint64) []byte {
	r := newRNG(g.seed, tagText, uint64(stream), msg, 0x5B)
	n := 2 + r.intn(6)
	for i := range n {
		w := r.word()
		if i > 0 {
			dst = append(dst, ' ')
		}
		off := len(dst)
		dst = append(dst, w...)
		if i == 0 || r.chance(30) {
			dst[off] -= 'a' - 'A'
		}
	}
	if r.chance(25) {
		dst = append(dst, " - "...)
		dst = append(dst, strings.ToUpper(vocab[r.intn(len(vocab))])...)
		dst = strconv.AppendInt(dst, int64(r.intn(10000)), 10)
	}
	return dst
}

// ownText generates the own text of msg into t (reusing its buffers).
func (g *Generator) ownText(t *text, stream int, msg uint64) {
	r := newRNG(g.seed, tagText, uint64(stream), msg)
	t.from = g.randPerson(&r)
	t.to = g.randPerson(&r)
	if r.chance(40) {
		t.from = g.owner(stream)
	} else if r.chance(70) {
		t.to = g.owner(stream)
	}
	b := t.buf[:0]
	t.paras = t.paras[:0]
	start := len(b)
	switch r.intn(4) {
	case 0:
		b = append(b, "Hi "...)
	case 1:
		b = append(b, "Hello "...)
	case 2:
		b = append(b, "Dear "...)
	default:
		b = append(b, "Good morning "...)
	}
	b = append(b, t.to.first...)
	b = append(b, ',')
	t.paras = append(t.paras, [2]int{start, len(b)})
	np := 1 + r.intn(5)
	for range np {
		b = append(b, "\r\n\r\n"...)
		start = len(b)
		col := 0
		ns := 1 + r.intn(6)
		for s := range ns {
			if r.intn(100) < stockPct {
				w := stockSentences[r.intn(len(stockSentences))]
				for len(w) > 0 {
					// Wrap at word boundaries.
					i := strings.IndexByte(w, ' ')
					word := w
					if i >= 0 {
						word = w[:i]
						w = w[i+1:]
					} else {
						w = ""
					}
					if col+len(word)+1 > lineWidth {
						b = append(b, "\r\n"...)
						col = 0
					} else if col > 0 {
						b = append(b, ' ')
						col++
					}
					b = append(b, word...)
					col += len(word)
				}
				continue
			}
			nw := 4 + r.intn(18)
			for i := range nw {
				w := r.word()
				if col+len(w)+1 > lineWidth {
					b = append(b, "\r\n"...)
					col = 0
				} else if i > 0 || s > 0 {
					b = append(b, ' ')
					col++
				}
				off := len(b)
				b = append(b, w...)
				col += len(w)
				if i == 0 {
					b[off] -= 'a' - 'A'
				} else if i < nw-1 && r.next()&15 == 0 {
					b = append(b, ',')
					col++
				}
			}
			if r.next()&7 == 0 {
				b = append(b, '?')
			} else {
				b = append(b, '.')
			}
			col++
		}
		t.paras = append(t.paras, [2]int{start, len(b)})
	}
	b = append(b, "\r\n\r\n"...)
	start = len(b)
	switch r.intn(4) {
	case 0:
		b = append(b, "Thanks,"...)
	case 1:
		b = append(b, "Best regards,"...)
	case 2:
		b = append(b, "Kind regards,"...)
	default:
		b = append(b, "Cheers,"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, t.from.first...)
	b = append(b, ' ')
	b = append(b, t.from.last...)
	b = append(b, "\r\n"...)
	b = append(b, titles[r.intn(len(titles))]...)
	b = append(b, "\r\n"...)
	b = append(b, t.from.domain...)
	b = append(b, " | +1 (425) 555-"...)
	b = strconv.AppendInt(b, int64(1000+r.intn(9000)), 10)
	t.paras = append(t.paras, [2]int{start, len(b)})
	t.buf = b
	t.subject = g.subject(t.subject[:0], stream, msg)
}

func disclaimerFor(p person) int {
	h := 0
	for i := 0; i < len(p.domain); i++ {
		h += int(p.domain[i])
	}
	return h % len(disclaimersC)
}

// appendQuoted appends the paragraphs of t with each line prefixed by
// level "> " markers.
func appendQuoted(dst []byte, t *text, level int) []byte {
	line := true
	for i := 0; i < len(t.buf); i++ {
		if line {
			for range level {
				dst = append(dst, '>')
			}
			dst = append(dst, ' ')
			line = false
		}
		c := t.buf[i]
		dst = append(dst, c)
		if c == '\n' {
			line = true
		}
	}
	return append(dst, "\r\n"...)
}

const htmlHead = `<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" xmlns="http://www.w3.org/TR/REC-html40">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="Generator" content="Microsoft Word 15 (filtered medium)">
<style><!--
/* Font Definitions */
@font-face
	{font-family:"Cambria Math";
	panose-1:2 4 5 3 5 4 6 3 2 4;}
@font-face
	{font-family:Calibri;
	panose-1:2 15 5 2 2 2 4 3 2 4;}
/* Style Definitions */
p.MsoNormal, li.MsoNormal, div.MsoNormal
	{margin:0in;
	font-size:11.0pt;
	font-family:"Calibri",sans-serif;}
a:link, span.MsoHyperlink
	{mso-style-priority:99;
	color:#0563C1;
	text-decoration:underline;}
span.EmailStyle17
	{mso-style-type:personal-compose;
	font-family:"Calibri",sans-serif;
	color:windowtext;}
.MsoChpDefault
	{mso-style-type:export-only;
	font-family:"Calibri",sans-serif;}
@page WordSection1
	{size:8.5in 11.0in;
	margin:1.0in 1.0in 1.0in 1.0in;}
div.WordSection1
	{page:WordSection1;}
--></style>
</head>
<body lang="EN-US" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">
<div class="WordSection1">
`

func appendHTMLText(dst []byte, t *text) []byte {
	for _, p := range t.paras {
		dst = append(dst, "<p class=\"MsoNormal\">"...)
		dst = append(dst, t.buf[p[0]:p[1]]...)
		dst = append(dst, "<o:p></o:p></p>\r\n<p class=\"MsoNormal\"><o:p>&nbsp;</o:p></p>\r\n"...)
	}
	return dst
}

func appendHTMLHeaderBlock(dst []byte, t *text, date int64) []byte {
	dst = append(dst, "<div style=\"border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in\">\r\n<p class=\"MsoNormal\"><b>From:</b> "...)
	dst = append(dst, t.from.first...)
	dst = append(dst, ' ')
	dst = append(dst, t.from.last...)
	dst = append(dst, " &lt;"...)
	dst = appendEmail(dst, t.from)
	dst = append(dst, "&gt;<br>\r\n<b>Sent:</b> "...)
	dst = appendDate(dst, date)
	dst = append(dst, "<br>\r\n<b>To:</b> "...)
	dst = append(dst, t.to.first...)
	dst = append(dst, ' ')
	dst = append(dst, t.to.last...)
	dst = append(dst, "<br>\r\n<b>Subject:</b> "...)
	dst = append(dst, t.subject...)
	return append(dst, "<o:p></o:p></p>\r\n</div>\r\n"...)
}

// quoteChain returns the earlier messages quoted by msg, most recent first.
func (g *Generator) quoteChain(stream int, msg uint64) []uint64 {
	r := newRNG(g.seed, tagHeader, uint64(stream), msg, 0x9C)
	var q []uint64
	cur := msg
	if !r.chance(replyPct) {
		return nil
	}
	for len(q) < maxQuoteDepth && cur > 1 {
		w := min(cur-1, quoteWindow)
		cur = cur - 1 - uint64(r.intn(int(w)))
		q = append(q, cur)
		if !r.chance(quoteMorePct) {
			break
		}
	}
	return q
}

// scratch holds reusable buffers of appendRaw.
type scratch struct {
	own    text
	quoted [maxQuoteDepth]text
	att    []byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// appendRaw appends the complete MIME message msg of stream.
func (g *Generator) appendRaw(dst []byte, stream int, msg uint64) []byte {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	own := &sc.own
	g.ownText(own, stream, msg)
	chain := g.quoteChain(stream, msg)
	quoted := sc.quoted[:len(chain)]
	for i, q := range chain {
		g.ownText(&quoted[i], stream, q)
	}
	atts := g.plan(stream, msg)
	date := g.msgTime(stream, msg)

	r := newRNG(g.seed, tagHeader, uint64(stream), msg)
	// Received chain, newest first.
	nrecv := 3 + r.intn(4)
	for i := range nrecv {
		a := exchangeServers[r.intn(len(exchangeServers))]
		b := exchangeServers[r.intn(len(exchangeServers))]
		dst = append(dst, "Received: from "...)
		dst = append(dst, a...)
		dst = append(dst, ".namprd"...)
		dst = strconv.AppendInt(dst, int64(10+len(a)%10), 10)
		dst = append(dst, ".prod.outlook.com (2603:10b6:"...)
		dst = appendHex(dst, &r, 3)
		dst = append(dst, "::"...)
		dst = appendHex(dst, &r, 2)
		dst = append(dst, ")\r\n by "...)
		dst = append(dst, b...)
		dst = append(dst, ".namprd"...)
		dst = strconv.AppendInt(dst, int64(10+len(b)%10), 10)
		dst = append(dst, ".prod.outlook.com (2603:10b6:"...)
		dst = appendHex(dst, &r, 3)
		dst = append(dst, "::"...)
		dst = appendHex(dst, &r, 2)
		dst = append(dst, ") with Microsoft SMTP Server (version=TLS1_2,\r\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7"...)
		dst = strconv.AppendInt(dst, int64(100+r.intn(900)), 10)
		dst = append(dst, '.')
		dst = strconv.AppendInt(dst, int64(r.intn(40)), 10)
		dst = append(dst, "; "...)
		dst = appendDate(dst, date-int64(nrecv-i))
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Authentication-Results: spf=pass (sender IP is 40.107."...)
	dst = strconv.AppendInt(dst, int64(r.intn(256)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(r.intn(256)), 10)
	dst = append(dst, ")\r\n smtp.mailfrom="...)
	dst = append(dst, own.from.domain...)
	dst = append(dst, "; dkim=pass (signature was verified)\r\n header.d="...)
	dst = append(dst, own.from.domain...)
	dst = append(dst, ";dmarc=pass action=none header.from="...)
	dst = append(dst, own.from.domain...)
	dst = append(dst, ";compauth=pass reason=100\r\n"...)
	dst = append(dst, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d="...)
	dst = append(dst, own.from.domain...)
	dst = append(dst, "; s=selector"...)
	dst = strconv.AppendInt(dst, int64(1+r.intn(2)), 10)
	dst = append(dst, ";\r\n h=From:Date:Subject:Message-ID:Content-Type:MIME-Version:X-MS-Exchange-SenderADCheck;\r\n bh="...)
	dst = appendB64Random(dst, &r, 43)
	dst = append(dst, "=;\r\n b="...)
	for i := 0; i < 5; i++ {
		dst = appendB64Random(dst, &r, 68)
		dst = append(dst, "\r\n "...)
	}
	dst = appendB64Random(dst, &r, 2)
	dst = append(dst, "==\r\n"...)
	dst = append(dst, "From: "...)
	dst = appendAddr(dst, own.from)
	dst = append(dst, "\r\nTo: "...)
	dst = appendAddr(dst, own.to)
	for range r.intn(3) {
		dst = append(dst, ",\r\n "...)
		dst = appendAddr(dst, g.randPerson(&r))
	}
	if r.chance(40) {
		dst = append(dst, "\r\nCC: "...)
		for i := range 1 + r.intn(3) {
			if i > 0 {
				dst = append(dst, ",\r\n "...)
			}
			dst = appendAddr(dst, g.randPerson(&r))
		}
	}
	dst = append(dst, "\r\nSubject: "...)
	topic := own
	if len(chain) > 0 {
		topic = &quoted[len(chain)-1]
		dst = append(dst, "RE: "...)
	}
	dst = append(dst, topic.subject...)
	dst = append(dst, "\r\nThread-Topic: "...)
	dst = append(dst, topic.subject...)
	dst = append(dst, "\r\nThread-Index: AQH"...)
	dst = appendB64Random(dst, &r, 25+4*len(chain))
	dst = append(dst, "==\r\nDate: "...)
	dst = appendDate(dst, date)
	dst = append(dst, "\r\nMessage-ID: "...)
	dst = g.messageID(dst, stream, msg)
	if len(chain) > 0 {
		dst = append(dst, "\r\nReferences: "...)
		for i := len(chain) - 1; i >= 0; i-- {
			dst = g.messageID(dst, stream, chain[i])
			if i > 0 {
				dst = append(dst, "\r\n "...)
			}
		}
		dst = append(dst, "\r\nIn-Reply-To: "...)
		dst = g.messageID(dst, stream, chain[0])
	}
	dst = append(dst, "\r\nAccept-Language: en-US\r\nContent-Language: en-US\r\nX-MS-Has-Attach: "...)
	if len(atts) > 0 {
		dst = append(dst, "yes"...)
	}
	dst = append(dst, "\r\nX-MS-TNEF-Correlator:\r\nX-MS-Exchange-Organization-SCL: -1\r\nX-MS-Exchange-CrossTenant-Network-Message-Id: "...)
	dst = appendGUID(dst, &r)
	dst = append(dst, "\r\nX-MS-Exchange-CrossTenant-id: "...)
	dst = append(dst, g.tenant...)
	dst = append(dst, "\r\nX-MS-Exchange-CrossTenant-originalarrivaltime: "...)
	dst = appendDate(dst, date)
	dst = append(dst, "\r\nX-Originating-IP: [10."...)
	dst = strconv.AppendInt(dst, int64(r.intn(256)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(r.intn(256)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(r.intn(256)), 10)
	dst = append(dst, "]\r\nMIME-Version: 1.0\r\n"...)

	var bnd [24]byte
	copy(bnd[:], "_000_")
	appendHex(bnd[:5], &r, 18)
	bnd[23] = '_'
	altB := bnd[:]
	var mixB []byte
	if len(atts) > 0 {
		mixB = append([]byte(nil), altB...)
		mixB[3] = '4'
		dst = append(dst, "Content-Type: multipart/mixed;\r\n\tboundary=\""...)
		dst = append(dst, mixB...)
		dst = append(dst, "\"\r\n\r\n--"...)
		dst = append(dst, mixB...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Type: multipart/alternative;\r\n\tboundary=\""...)
	dst = append(dst, altB...)
	dst = append(dst, "\"\r\n\r\n--"...)
	dst = append(dst, altB...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"...)

	// Plain text.
	dst = append(dst, own.buf...)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, disclaimersC[disclaimerFor(own.from)]...)
	dst = append(dst, "\r\n"...)
	for i := range quoted {
		q := &quoted[i]
		dst = append(dst, "\r\n"...)
		for range i {
			dst = append(dst, "> "...)
		}
		dst = append(dst, "On "...)
		dst = appendDate(dst, g.msgTime(stream, chain[i]))
		dst = append(dst, ", "...)
		dst = appendAddr(dst, q.from)
		dst = append(dst, " wrote:\r\n"...)
		dst = appendQuoted(dst, q, i+1)
	}
	dst = append(dst, "\r\n--"...)
	dst = append(dst, altB...)
	dst = append(dst, "\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"...)
	// HTML rendering.
	dst = append(dst, htmlHead...)
	dst = appendHTMLText(dst, own)
	dst = append(dst, "<p class=\"MsoNormal\" style=\"font-size:8.0pt;color:gray\">"...)
	dst = append(dst, disclaimersC[disclaimerFor(own.from)]...)
	dst = append(dst, "</p>\r\n"...)
	for i := range quoted {
		dst = append(dst, "<blockquote style=\"border:none;border-left:solid #CCCCCC 1.0pt;padding:0in 0in 0in 6.0pt;margin-left:4.8pt\">\r\n"...)
		dst = appendHTMLHeaderBlock(dst, &quoted[i], g.msgTime(stream, chain[i]))
		dst = appendHTMLText(dst, &quoted[i])
	}
	for range quoted {
		dst = append(dst, "</blockquote>\r\n"...)
	}
	dst = append(dst, "</div>\r\n</body>\r\n</html>\r\n\r\n--"...)
	dst = append(dst, altB...)
	dst = append(dst, "--\r\n"...)

	if len(atts) > 0 {
		sep := 0
		for i, a := range atts {
			dst = append(dst, "\r\n--"...)
			dst = append(dst, mixB...)
			at := attachmentTypes[a.typ]
			dst = append(dst, "\r\nContent-Type: "...)
			dst = append(dst, at.ctype...)
			dst = append(dst, "; name=\""...)
			nameOff := len(dst)
			ar := rng{s: a.name}
			for j := range 1 + ar.intn(4) {
				if j > 0 {
					dst = append(dst, '_')
				}
				dst = append(dst, ar.word()...)
			}
			dst = append(dst, '_')
			dst = strconv.AppendInt(dst, int64(ar.intn(10000)), 10)
			dst = append(dst, '.')
			dst = append(dst, at.ext...)
			name := dst[nameOff:]
			dst = append(dst, "\"\r\nContent-Description: "...)
			dst = append(dst, name...)
			dst = append(dst, "\r\nContent-Disposition: attachment;\r\n\tfilename=\""...)
			dst = append(dst, name...)
			dst = append(dst, "\"; size="...)
			dst = strconv.AppendInt(dst, int64(a.size), 10)
			dst = append(dst, ";\r\n\tcreation-date=\""...)
			dst = appendDate(dst, date-3600)
			dst = append(dst, "\";\r\n\tmodification-date=\""...)
			dst = appendDate(dst, date-60)
			dst = append(dst, "\"\r\n"...)
			if a.inline {
				dst = append(dst, "Content-Transfer-Encoding: base64\r\n\r\n"...)
				sc.att = g.attachmentBytes(sc.att[:0], stream, msg, i, a.size)
				dst = appendBase64Lines(dst, sc.att)
			} else {
				dst = append(dst, "X-Tapestream-Attachment: "...)
				dst = strconv.AppendInt(dst, int64(sep), 10)
				dst = append(dst, "\r\nContent-Transfer-Encoding: binary\r\n\r\n[stored separately]\r\n"...)
				sep++
			}
		}
		dst = append(dst, "\r\n--"...)
		dst = append(dst, mixB...)
		dst = append(dst, "--\r\n"...)
	}
	return dst
}

// appendBase64Lines appends base64 of raw in 76-character CRLF lines.
func appendBase64Lines(dst, raw []byte) []byte {
	const chunk = 57
	lines := (len(raw) + chunk - 1) / chunk
	off := len(dst)
	dst = grow(dst, base64.StdEncoding.EncodedLen(len(raw))+2*lines)
	out := dst[off:off]
	for len(raw) > 0 {
		n := min(chunk, len(raw))
		e := base64.StdEncoding.EncodedLen(n)
		out = out[:len(out)+e]
		base64.StdEncoding.Encode(out[len(out)-e:], raw[:n])
		out = append(out, '\r', '\n')
		raw = raw[n:]
	}
	return dst[:off+len(out)]
}
