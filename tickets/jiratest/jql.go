package jiratest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// query is the subset of JQL the fake understands: clauses `field = value`
// joined by AND, then an optional ORDER BY created [ASC|DESC]. Values are
// quoted strings ("..." or '...', with \" \' \\ escapes) or bare words of
// letters, digits and '_' only: Jira reserves '-', space and most
// punctuation in unquoted values, so a client that forgets to quote is
// refused here as it would be there.
type query struct {
	clauses []clause
	orderBy string
	desc    bool
}

type clause struct{ field, value string }

var jqlFields = []string{"project", "labels", "key", "statuscategory", "issuetype"}

func (q query) match(is *Issue) bool {
	for _, c := range q.clauses {
		ok := false
		switch c.field {
		case "project":
			ok = strings.EqualFold(is.Project, c.value)
		case "labels":
			ok = slices.Contains(is.Labels, c.value)
		case "key":
			ok = strings.EqualFold(is.Key, c.value)
		case "statuscategory":
			ok = strings.EqualFold(category(is.Status), c.value) || (c.value == "Done" && is.Status == StatusDone)
		case "issuetype":
			ok = strings.EqualFold(is.Type, c.value)
		}
		if !ok {
			return false
		}
	}
	return true
}

type token struct {
	text   string
	quoted bool
}

func tokenize(s string) ([]token, error) {
	var out []token
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '=':
			out = append(out, token{text: "="})
			i++
		case r == '"' || r == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(rs) {
				c := rs[j]
				if c == '\\' {
					if j+1 >= len(rs) {
						return nil, errors.New("the quoted string ends with a lone backslash")
					}
					next := rs[j+1]
					switch next {
					case '"', '\'', '\\':
						b.WriteRune(next)
					case 'n':
						b.WriteRune('\n')
					case 'r':
						b.WriteRune('\r')
					case 't':
						b.WriteRune('\t')
					default:
						return nil, fmt.Errorf("'\\%c' is an illegal escape sequence", next)
					}
					j += 2
					continue
				}
				if c == r {
					closed = true
					j++
					break
				}
				b.WriteRune(c)
				j++
			}
			if !closed {
				return nil, fmt.Errorf("the quoted string starting at character %d is not closed", i+1)
			}
			out = append(out, token{text: b.String(), quoted: true})
			i = j
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '=' {
				c := rs[j]
				if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '_' {
					return nil, fmt.Errorf("the character '%c' is a reserved JQL character; you must surround it in quotation marks to use it in a query", c)
				}
				j++
			}
			out = append(out, token{text: string(rs[i:j])})
			i = j
		}
	}
	return out, nil
}

func parseJQL(s string) (query, error) {
	var q query
	toks, err := tokenize(s)
	if err != nil {
		return q, err
	}
	i := 0
	word := func(w string) bool {
		if i < len(toks) && !toks[i].quoted && strings.EqualFold(toks[i].text, w) {
			i++
			return true
		}
		return false
	}
	for i < len(toks) {
		if word("ORDER") {
			if !word("BY") {
				return q, errors.New("expecting 'BY' after 'ORDER'")
			}
			if i >= len(toks) || !strings.EqualFold(toks[i].text, "created") {
				return q, errors.New("this fake orders by created only")
			}
			q.orderBy = "created"
			i++
			if word("DESC") {
				q.desc = true
			} else {
				word("ASC")
			}
			if i != len(toks) {
				return q, fmt.Errorf("unexpected %q after ORDER BY", toks[i].text)
			}
			return q, nil
		}
		if len(q.clauses) > 0 && !word("AND") {
			return q, fmt.Errorf("expecting AND, OR or ORDER BY but got %q", toks[i].text)
		}
		if i+2 >= len(toks) {
			return q, errors.New("incomplete clause at the end of the query")
		}
		field := toks[i]
		if field.quoted || !slices.Contains(jqlFields, strings.ToLower(field.text)) {
			return q, fmt.Errorf("field %q does not exist or this fake does not know it", field.text)
		}
		if toks[i+1].quoted || toks[i+1].text != "=" {
			return q, fmt.Errorf("expecting '=' after %q", field.text)
		}
		v := toks[i+2]
		if !v.quoted && (v.text == "" || strings.EqualFold(v.text, "AND") || strings.EqualFold(v.text, "ORDER")) {
			return q, fmt.Errorf("expecting a value after '%s ='", field.text)
		}
		q.clauses = append(q.clauses, clause{field: strings.ToLower(field.text), value: v.text})
		i += 3
	}
	if len(q.clauses) == 0 {
		return q, errors.New("the query is empty")
	}
	return q, nil
}
