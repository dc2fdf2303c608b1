package knowledge

import (
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Hit is one search result.
type Hit struct {
	Runbook Runbook
	// Score is the BM25 score; only its order means anything.
	Score float64
	// Excerpt is one line of the runbook around the best match, as plain
	// text (Markdown markers removed), at most ExcerptLen characters.
	Excerpt string
}

// ExcerptLen is the longest excerpt, in characters.
const ExcerptLen = 160

// MaxQueryTerms bounds the work one query can cause: words beyond the
// first 32 distinct ones are ignored.
const MaxQueryTerms = 32

// BM25 parameters: the usual ones. Title and tag words count as if they
// appeared several times in the body, so a runbook about a thing outranks
// one that mentions it (a simple form of BM25F).
const (
	bm25K1      = 1.2
	bm25B       = 0.75
	titleWeight = 3
	tagWeight   = 2
)

// index is an inverted index over one set of runbooks. It is built once per
// load and only read afterwards, so searches need no lock.
type index struct {
	postings map[string][]posting
	// docLen is each runbook's weighted length in terms; avgLen their mean.
	docLen []float64
	avgLen float64
	// lines are each runbook's body lines as plain text, for excerpts.
	lines [][]plainLine
}

type posting struct {
	doc int32
	// tf is the weighted term frequency: title and tag occurrences count
	// titleWeight and tagWeight times.
	tf float32
}

func buildIndex(rbs []Runbook) *index {
	ix := &index{
		postings: map[string][]posting{},
		docLen:   make([]float64, len(rbs)),
		lines:    make([][]plainLine, len(rbs)),
	}
	var total float64
	tf := map[string]float32{}
	for i, rb := range rbs {
		clear(tf)
		var n float64
		add := func(text string, w float32) {
			for _, t := range tokens(text) {
				tf[t] += w
				n += float64(w)
			}
		}
		add(rb.Title, titleWeight)
		for _, tag := range rb.Tags {
			add(tag, tagWeight)
		}
		// What a runbook applies to is searchable too: "LiveMigrationFailure"
		// or "vm-guest-crash" finds the runbook that names it.
		for _, list := range [][]string{rb.AppliesTo.Rules, rb.AppliesTo.Causes, rb.AppliesTo.Events, rb.AppliesTo.Components} {
			for _, v := range list {
				add(v, 1)
			}
		}
		ix.lines[i] = plainLines(rb.Body)
		for j := range ix.lines[i] {
			l := &ix.lines[i][j]
			l.spans = tokenSpans(l.text)
			for _, sp := range l.spans {
				tf[sp.term]++
				n++
			}
		}
		for t, f := range tf {
			ix.postings[t] = append(ix.postings[t], posting{doc: int32(i), tf: f})
		}
		ix.docLen[i] = n
		total += n
	}
	if len(rbs) > 0 {
		ix.avgLen = total / float64(len(rbs))
	}
	return ix
}

// idf is BM25's inverse document frequency, never negative.
func (ix *index) idf(term string) float64 {
	n := float64(len(ix.docLen))
	df := float64(len(ix.postings[term]))
	return math.Log(1 + (n-df+0.5)/(df+0.5))
}

// search ranks the runbooks for query and returns the best n. Runbooks
// that share no word with the query are not returned.
func (ix *index) search(rbs []Runbook, query string, n int) []Hit {
	terms := uniqueTokens(query)
	if len(terms) > MaxQueryTerms {
		terms = terms[:MaxQueryTerms]
	}
	if len(terms) == 0 || n <= 0 || len(rbs) == 0 {
		return nil
	}
	scores := make([]float64, len(rbs))
	weights := make([]float64, len(terms))
	for i, t := range terms {
		ps := ix.postings[t]
		if len(ps) == 0 {
			continue
		}
		idf := ix.idf(t)
		weights[i] = idf
		for _, p := range ps {
			tf := float64(p.tf)
			norm := bm25K1 * (1 - bm25B + bm25B*ix.docLen[p.doc]/ix.avgLen)
			scores[p.doc] += idf * tf * (bm25K1 + 1) / (tf + norm)
		}
	}
	// Keep the best n in order while scanning: n is a handful, the
	// runbooks may be thousands, so this beats sorting them all.
	better := func(a, b int) bool {
		if scores[a] != scores[b] {
			return scores[a] > scores[b]
		}
		return rbs[a].Slug < rbs[b].Slug
	}
	docs := make([]int, 0, n)
	for d, sc := range scores {
		if sc <= 0 || (len(docs) == n && !better(d, docs[n-1])) {
			continue
		}
		if len(docs) < n {
			docs = append(docs, d)
		} else {
			docs[n-1] = d
		}
		for i := len(docs) - 1; i > 0 && better(docs[i], docs[i-1]); i-- {
			docs[i], docs[i-1] = docs[i-1], docs[i]
		}
	}
	hits := make([]Hit, len(docs))
	for i, d := range docs {
		hits[i] = Hit{Runbook: rbs[d], Score: scores[d], Excerpt: excerpt(ix.lines[d], terms, weights)}
	}
	return hits
}

// excerpt picks the body line whose query words weigh most (each distinct
// word counted once, by its idf; the earliest line wins a tie) and cuts it
// to ExcerptLen characters around its first match. With no matching line,
// it is the first line of the body that is not a heading.
func excerpt(lines []plainLine, terms []string, weights []float64) string {
	best, bestW, bestAt := -1, 0.0, 0
	seen := make([]bool, len(terms))
	for i, l := range lines {
		var w float64
		at := -1
		clear(seen)
		for _, tk := range l.spans {
			j := slices.Index(terms, tk.term)
			if j < 0 || seen[j] {
				continue
			}
			seen[j] = true
			w += weights[j] + 1e-9 // a word unknown to the index still counts a little
			if at < 0 {
				at = tk.start
			}
		}
		if w > bestW {
			best, bestW, bestAt = i, w, at
		}
	}
	if best < 0 {
		for _, l := range lines {
			if !l.heading {
				return cut(l.text, 0)
			}
		}
		return ""
	}
	return cut(lines[best].text, bestAt)
}

// cut shortens line to ExcerptLen characters, keeping the byte offset at in
// view, cutting at spaces and marking cuts with "…".
func cut(line string, at int) string {
	if utf8.RuneCountInString(line) <= ExcerptLen {
		return line
	}
	runes := []rune(line)
	atRune := utf8.RuneCountInString(line[:at])
	// Show some words before the match, most of the room after it.
	start := max(0, atRune-ExcerptLen/4)
	if start > 0 {
		if sp := indexRune(runes, start, ' '); sp >= 0 && sp < atRune {
			start = sp + 1
		}
	}
	end := min(len(runes), start+ExcerptLen-2)
	if end < len(runes) {
		if sp := lastIndexRune(runes[:end], ' '); sp > atRune && sp > start {
			end = sp
		}
	}
	var b strings.Builder
	if start > 0 {
		b.WriteString("…")
	}
	b.WriteString(strings.TrimSpace(string(runes[start:end])))
	if end < len(runes) {
		b.WriteString("…")
	}
	return b.String()
}

func indexRune(rs []rune, from int, r rune) int {
	for i := from; i < len(rs); i++ {
		if rs[i] == r {
			return i
		}
	}
	return -1
}

func lastIndexRune(rs []rune, r rune) int {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i] == r {
			return i
		}
	}
	return -1
}

// plainLines turns Markdown into the units a person reads, one a line:
// a paragraph or list item with its wrapped lines joined, a heading, a
// table row, a line of code. Heading marks, bullets, emphasis, fences and
// link targets are dropped.
func plainLines(md string) []plainLine {
	var (
		out     []plainLine
		cur     []string
		inCode  bool
		flushed = func() {
			if len(cur) > 0 {
				if t := inlineText(strings.Join(cur, " ")); t != "" {
					out = append(out, plainLine{text: t})
				}
				cur = cur[:0]
			}
		}
	)
	for _, raw := range strings.Split(md, "\n") {
		l := strings.TrimSpace(raw)
		if strings.HasPrefix(l, "```") || strings.HasPrefix(l, "~~~") {
			flushed()
			inCode = !inCode
			continue
		}
		if inCode {
			if l != "" {
				out = append(out, plainLine{text: strings.Join(strings.Fields(l), " ")})
			}
			continue
		}
		switch {
		case l == "":
			flushed()
		case strings.HasPrefix(l, "#"):
			flushed()
			if t := inlineText(strings.TrimLeft(l, "# ")); t != "" {
				out = append(out, plainLine{text: t, heading: true})
			}
		case strings.HasPrefix(l, "|"):
			flushed()
			if strings.Trim(l, "|-: ") != "" { // not the |---|---| separator
				cur = append(cur, strings.ReplaceAll(strings.Trim(l, "|"), "|", " "))
				flushed()
			}
		case listItem(l) != l:
			flushed()
			cur = append(cur, listItem(l))
		default:
			cur = append(cur, strings.TrimSpace(strings.TrimLeft(l, ">")))
		}
	}
	flushed()
	return out
}

// listItem strips a bullet ("- ", "* ", "+ ", "- [ ] ") or a number
// ("1. ", "2) ") from the start of l; l is returned unchanged if it is not
// a list item.
func listItem(l string) string {
	for _, p := range []string{"- [ ] ", "- [x] ", "- ", "* ", "+ "} {
		if rest, ok := strings.CutPrefix(l, p); ok {
			return rest
		}
	}
	i := 0
	for i < len(l) && l[i] >= '0' && l[i] <= '9' {
		i++
	}
	if i > 0 && i+1 < len(l) && (l[i] == '.' || l[i] == ')') && l[i+1] == ' ' {
		return l[i+2:]
	}
	return l
}

// inlineText drops inline Markdown: emphasis, code ticks, link targets.
func inlineText(l string) string {
	l = stripLinks(l)
	l = strings.NewReplacer("**", "", "__", "", "`", "").Replace(l)
	return strings.Join(strings.Fields(l), " ")
}

// plainLine is one line of a runbook as plain text.
type plainLine struct {
	text    string
	heading bool
	// spans are the line's search terms, kept for excerpts.
	spans []span
}

// stripLinks turns "[text](target)" into "text".
func stripLinks(l string) string {
	for {
		open := strings.Index(l, "](")
		if open < 0 {
			return l
		}
		start := strings.LastIndexByte(l[:open], '[')
		end := strings.IndexByte(l[open:], ')')
		if start < 0 || end < 0 {
			return l
		}
		l = l[:start] + l[start+1:open] + l[open+end+1:]
	}
}

// span is a token and where it starts in its text.
type span struct {
	term  string
	start int
}

// tokenSpans splits text into lowercased, stemmed words of letters and
// digits, dropping stop words. A camel-case word also yields its parts:
// "VirtualMachineCrashed" gives "virtualmachinecrash", "virtual",
// "machine" and "crash".
func tokenSpans(text string) []span {
	var out []span
	emit := func(w string, at int) {
		w = strings.ToLower(w)
		if !stopWords[w] {
			out = append(out, span{term: stem(w), start: at})
		}
	}
	start := -1
	flush := func(end int) {
		if start < 0 {
			return
		}
		word := text[start:end]
		emit(word, start)
		// Camel-case parts begin where a lower-case letter or digit is
		// followed by an upper-case one.
		from, prevLower := 0, false
		parts := 0
		for i, r := range word {
			if unicode.IsUpper(r) && prevLower {
				emit(word[from:i], start+from)
				from = i
				parts++
			}
			prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		}
		if parts > 0 {
			emit(word[from:], start+from)
		}
		start = -1
	}
	for i, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
	}
	flush(len(text))
	return out
}

// tokens returns the search terms of text, in order.
func tokens(text string) []string {
	sp := tokenSpans(text)
	out := make([]string, len(sp))
	for i, s := range sp {
		out[i] = s.term
	}
	return out
}

func uniqueTokens(text string) []string {
	var out []string
	for _, t := range tokens(text) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// stopWords are English words too common to rank by.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be but by can do does for from has have how i if in
		into is it its may must no not of on or so than that the their then there these this to was were
		what when where which while who will with you your`) {
		m[w] = true
	}
	return m
}()

// stem strips common English inflections so that "crashes", "crashed"
// and "crashing" all become "crash", "memories" "memory", and "planned"
// "plan" (but "plane" stays "plane"). It is steps 1a, 1b and 5a of
// Porter's stemmer: plurals, -ed, -ing and a final e, which is what
// conflates the forms people type; a query and a text are stemmed alike,
// so it only has to conflate forms, not find roots.
func stem(w string) string {
	if len(w) <= 3 || !isASCIIWord(w) {
		return w
	}
	// Step 1a: plurals.
	switch {
	case strings.HasSuffix(w, "sses"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "ss"), strings.HasSuffix(w, "us"), strings.HasSuffix(w, "is"):
	case strings.HasSuffix(w, "s"):
		w = w[:len(w)-1]
	}
	// Step 1b: -eed, -ed, -ing.
	switch {
	case strings.HasSuffix(w, "eed"):
		if measure(w[:len(w)-3]) > 0 {
			w = w[:len(w)-1]
		}
	case strings.HasSuffix(w, "ed") && hasVowel(w[:len(w)-2]):
		w = restore(w[:len(w)-2])
	case strings.HasSuffix(w, "ing") && hasVowel(w[:len(w)-3]):
		w = restore(w[:len(w)-3])
	}
	// Step 5a: a final e ("degrade", "service"), unless the word is short
	// and ends consonant-vowel-consonant-e ("plane", "state").
	if strings.HasSuffix(w, "e") {
		b := w[:len(w)-1]
		if m := measure(b); m > 1 || (m == 1 && !cvc(b)) {
			w = b
		}
	}
	return w
}

// restore repairs a stem after -ed or -ing: "stat" becomes "state",
// "plann" "plan", "fil" "file".
func restore(w string) string {
	switch {
	case strings.HasSuffix(w, "at"), strings.HasSuffix(w, "bl"), strings.HasSuffix(w, "iz"):
		return w + "e"
	case len(w) >= 2 && w[len(w)-1] == w[len(w)-2] && !isVowel(w, len(w)-1) && !strings.ContainsRune("lsz", rune(w[len(w)-1])):
		return w[:len(w)-1]
	case measure(w) == 1 && cvc(w):
		return w + "e"
	}
	return w
}

// isVowel reports whether w[i] is a vowel; y is one after a consonant.
func isVowel(w string, i int) bool {
	switch w[i] {
	case 'a', 'e', 'i', 'o', 'u':
		return true
	case 'y':
		return i > 0 && !isVowel(w, i-1)
	}
	return false
}

func hasVowel(w string) bool {
	for i := range len(w) {
		if isVowel(w, i) {
			return true
		}
	}
	return false
}

// measure is Porter's m: the number of vowel-consonant sequences in w.
func measure(w string) int {
	m := 0
	prevVowel := false
	for i := range len(w) {
		v := isVowel(w, i)
		if prevVowel && !v {
			m++
		}
		prevVowel = v
	}
	return m
}

// cvc reports whether w ends consonant-vowel-consonant, the last not w, x
// or y ("hop", "plan", but not "snow").
func cvc(w string) bool {
	n := len(w)
	return n >= 3 && !isVowel(w, n-3) && isVowel(w, n-2) && !isVowel(w, n-1) && !strings.ContainsRune("wxy", rune(w[n-1]))
}

func isASCIIWord(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}
