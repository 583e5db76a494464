package scheme

import (
	"fmt"

	"github.com/panvault/panvault/vault/card"
)

// TokenResult is one item of TokenizeBatch: a token or the item's error.
// A plain value, safe for concurrent reads.
type TokenResult struct {
	Token string
	Err   error
}

// PANResult is one item of DetokenizeBatch: a PAN or the item's error.
// A plain value, safe for concurrent reads.
type PANResult struct {
	PAN card.PAN
	Err error
}

// TokenizeBatch tokenizes pans with one FF1 EncryptBatch call per distinct
// PAN length (so an HSM-backed FF1 pays its fixed number of AES calls once
// per length, not once per PAN). Results are in input order; an item that
// Tokenize would refuse gets that error in its Err and does not affect the
// others. The returned error is for the whole batch (a block cipher failure);
// then no result is returned.
//
// Item errors that are *card.RuleError name the field as the single-item
// calls do ("pan", "token"); the gRPC edge relabels them with the request's
// path (RuleError.WithField("items[3].pan")).
func (t *FF1Tokenizer) TokenizeBatch(pans []card.PAN) ([]TokenResult, error) {
	out := make([]TokenResult, len(pans))
	var groups [card.MaxLength + 1][]int
	for i, p := range pans {
		if err := t.s.CheckPAN(p); err != nil {
			out[i].Err = err
			continue
		}
		groups[p.Len()] = append(groups[p.Len()], i)
	}
	digits := make([]byte, len(pans)*card.MaxLength)
	defer clear(digits)
	for n, idx := range groups {
		if len(idx) == 0 {
			continue
		}
		l := t.s.layoutFor(n)
		g := t.newGroup(l, len(idx))
		for j, i := range idx {
			tok := pans[i].AppendDigits(digits[i*card.MaxLength : i*card.MaxLength])
			g.add(j, tok)
		}
		err := t.f.EncryptBatch(g.tweaks, g.xs)
		if err != nil {
			g.wipe()
			return nil, fmt.Errorf("ff1 tokenize batch: %w", err)
		}
		for j, i := range idx {
			tok := digits[i*card.MaxLength : i*card.MaxLength+n]
			t.finishToken(l, tok, g.xs[j])
			if pans[i].EqualDigits(tok) {
				out[i].Err = ErrFixedPoint
			} else {
				out[i].Token = string(tok)
			}
		}
		g.wipe()
	}
	return out, nil
}

// DetokenizeBatch detokenizes tokens with one FF1 DecryptBatch call per
// distinct token length. Results are in input order; an item that Detokenize
// would refuse gets that error. The returned error is for the whole batch (a block
// cipher failure); then no result is returned.
func (t *FF1Tokenizer) DetokenizeBatch(tokens []string) ([]PANResult, error) {
	out := make([]PANResult, len(tokens))
	var groups [card.MaxLength + 1][]int
	for i, tok := range tokens {
		if err := t.s.CheckToken(tok, ""); err != nil {
			out[i].Err = err
			continue
		}
		groups[len(tok)] = append(groups[len(tok)], i)
	}
	digits := make([]byte, len(tokens)*card.MaxLength)
	defer clear(digits)
	for n, idx := range groups {
		if len(idx) == 0 {
			continue
		}
		l := t.s.layoutFor(n)
		g := t.newGroup(l, len(idx))
		live := idx[:0:0]
		for _, i := range idx {
			b := append(digits[i*card.MaxLength:i*card.MaxLength], tokens[i]...)
			j := len(live)
			g.add(j, b)
			if err := t.checkCanonical(l, b, g.xs[j]); err != nil {
				out[i].Err = err
				g.drop(j)
				continue
			}
			live = append(live, i)
		}
		if len(live) == 0 {
			continue
		}
		err := t.f.DecryptBatch(g.tweaks[:len(live)], g.xs[:len(live)])
		if err != nil {
			g.wipe()
			return nil, fmt.Errorf("ff1 detokenize batch: %w", err)
		}
		for j, i := range live {
			b := digits[i*card.MaxLength : i*card.MaxLength+n]
			out[i].PAN, out[i].Err = t.finishPAN(l, b, g.xs[j], tokens[i])
		}
		g.wipe()
	}
	return out, nil
}

// batchGroup holds the FF1 inputs of one length, in shared backing arrays.
type batchGroup struct {
	t      *FF1Tokenizer
	l      *layout
	m      int // numerals per item
	tl     int // tweak bytes per item
	xbuf   []byte
	twbuf  []byte
	xs     [][]byte
	tweaks [][]byte
}

func (t *FF1Tokenizer) newGroup(l *layout, size int) *batchGroup {
	m, tl := l.valueEnd-l.lead, tweakLen(l)
	return &batchGroup{
		t: t, l: l, m: m, tl: tl,
		xbuf:   make([]byte, size*m),
		twbuf:  make([]byte, size*tl),
		xs:     make([][]byte, 0, size),
		tweaks: make([][]byte, 0, size),
	}
}

// add sets slot j (== number of items added so far) from the ASCII digits b.
func (g *batchGroup) add(j int, b []byte) {
	x := toNumerals(g.xbuf[j*g.m:j*g.m], b[g.l.lead:g.l.valueEnd])
	tw := appendTweak(g.twbuf[j*g.tl:j*g.tl], &g.t.prefix, g.l, b)
	g.xs = append(g.xs, x)
	g.tweaks = append(g.tweaks, tw)
}

// drop removes the last added slot j.
func (g *batchGroup) drop(j int) {
	clear(g.xs[j])
	g.xs = g.xs[:j]
	g.tweaks = g.tweaks[:j]
}

func (g *batchGroup) wipe() { clear(g.xbuf) }
