package report

import (
	"bytes"
	"html/template"
	"io"
	"strings"
)

// page is the HTML report: one self-contained file, its chart an inline
// SVG, its style in the page, nothing loaded from elsewhere.
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"join":  strings.Join,
	"pct":   pct,
	"u64":   func(n int) uint64 { return uint64(n) },
	"deref": func(p *int) int { return *p },
	"time":  func(layout string, t interface{ Format(string) string }) string { return t.Format(layout) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<title>spfd report for {{.D.Host}}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, td.name { text-align: left; }
.denied { color: #c0392b; } .accepted { color: #27ae60; }
</style>
</head>
<body>
<h1>spfd report for {{.D.Host}}</h1>
<p>{{time "2006-01-02 15:04" .D.From}} to {{time "2006-01-02 15:04 MST" .D.To}}</p>
<table id="totals">
<tr><th>Denied by the blacklist</th><td class="denied">{{.Denied}} {{.Unit}} ({{.T.BlackPackets}} packets)</td></tr>
<tr><th>Accepted by the MTA</th><td class="accepted">{{.T.MailConnections}} SMTP connections, {{.T.MailDeliveries}} messages delivered</td></tr>
<tr><th>Let in by the whitelist</th><td>{{.T.WhiteConnections}} connections ({{.T.WhitePackets}} packets)</td></tr>
</table>
<figure id="chart">{{.Chart}}</figure>
<h2>Lists</h2>
<p>Whitelist {{.D.Lists.WhiteEntries}} entries ({{.D.Lists.WhitePushed}} prefixes pushed), blacklist {{.D.Lists.BlackEntries}} entries ({{.D.Lists.BlackPushed}} pushed); {{.D.Offenders}} repeat offenders remembered.</p>
<h2>Sources</h2>
<table id="sources">
<tr><th>list</th><th>source</th><th>entries</th><th>seen since listed</th><th>hit rate</th></tr>
{{range .D.Sources}}<tr><td>{{.List}}</td><td class="name">{{.Source}}</td><td>{{.Entries}}</td>{{if .Seen}}<td>{{.Seen}}</td><td>{{pct (u64 (deref .Seen)) (u64 .Entries)}}</td>{{else}}<td>-</td><td>-</td>{{end}}</tr>
{{end}}</table>
{{with .D.SeenNote}}<p>Seen not counted: {{.}}</p>{{end}}
{{if .D.TopBlocked}}<h2>Top blocked</h2>
<table id="top">
<tr><th>prefix</th><th>packets</th><th>sources</th></tr>
{{range .D.TopBlocked}}<tr><td>{{.Prefix}}</td><td>{{.Packets}}</td><td class="name">{{join .Sources ", "}}</td></tr>
{{end}}</table>
{{end}}<h2>SPF walks</h2>
<p>{{with .D.Walks}}{{if not .LastPass.IsZero}}Last pass {{time "2006-01-02 15:04" .LastPass}}: {{end}}{{.Domains}} domains, {{.Complete}} complete, {{.TempFail}} temporary failures, {{.PermFail}} permanent failures, {{.Refused}} refused; {{.Whitelist}} networks whitelisted.{{end}}</p>
{{with .D.Walks.Problems}}<ul id="problems">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
</body>
</html>
`))

// HTML writes the report as a self-contained HTML page.
func HTML(w io.Writer, d *Data) error {
	var svg bytes.Buffer
	chart(&svg, d, false)
	t := d.Totals()
	denied, _ := t.Denied()
	return page.Execute(w, struct {
		D      *Data
		T      Hour
		Denied uint64
		Unit   string
		// The chart is drawn by chart, which escapes every text it puts
		// in, so the template may take it as it is.
		Chart template.HTML
	}{d, t, denied, d.deniedUnit(), template.HTML(svg.String())})
}
