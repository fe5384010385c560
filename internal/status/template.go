package status

import (
	"encoding/json"
	"html/template"
	"io"
	"strconv"
	"time"
)

// pageTemplate renders the page ("page") and its body alone ("body").
var pageTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"clock":   func(t time.Time) string { return t.UTC().Format("15:04:05Z") },
	"num":     formatInt,
	"secs":    formatSeconds,
	"opt": func(v *int64) string {
		if v == nil {
			return "–"
		}
		return formatInt(*v)
	},
	"lagging": func(v *int64) bool { return v != nil && *v > 0 },
	"latest": func(cs []Commit, n int) []Commit {
		out := make([]Commit, 0, n)
		for i := len(cs) - 1; i >= 0 && len(out) < n; i-- {
			out = append(out, cs[i])
		}
		return out
	},
}).ParseFS(assets, "assets/page.html"))

// formatInt prints n with thousands separators (1,234,567).
func formatInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// formatSeconds prints a duration in seconds readably: 12 ms, 1.25 s, 3m20s.
func formatSeconds(s float64) string {
	switch {
	case s <= 0:
		return "0"
	case s < 1:
		return strconv.FormatFloat(s*1000, 'f', 0, 64) + " ms"
	case s < 60:
		return strconv.FormatFloat(s, 'f', 2, 64) + " s"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
