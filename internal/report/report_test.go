package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func load(t *testing.T) *Data {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d Data
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed (go test -run %s -update to accept):\n%s", name, t.Name(), got)
	}
}

// The report rendered from a recorded day: text for mail, an SVG chart,
// and an HTML page, each against its golden file.
func TestTextReport(t *testing.T) {
	var b bytes.Buffer
	if err := Text(&b, load(t)); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(b.String(), "\n") {
		if len([]rune(line)) > 80 {
			t.Errorf("line %d is %d columns, over a mail client's 80: %q", i+1, len([]rune(line)), line)
		}
	}
	for _, want := range []string{"Denied by the blacklist:   ", "log:sshd", "74.8%", "45.148.10.0/24", "139 complete"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
	golden(t, "report.txt", b.Bytes())
}

// The SVG is well-formed XML with an svg root and a bar per hour and
// series.
func TestSVGReport(t *testing.T) {
	d := load(t)
	var b bytes.Buffer
	if err := SVG(&b, d); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	root, rects := "", 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Space + " " + se.Name.Local
			}
			if se.Name.Local == "rect" {
				rects++
			}
		}
	}
	if root != "http://www.w3.org/2000/svg svg" || rects != 2*len(d.Hours) {
		t.Fatalf("root %q, %d bars for %d hours", root, rects, len(d.Hours))
	}
	golden(t, "report.svg", b.Bytes())
}

// The HTML page parses, loads nothing from elsewhere, holds the chart and
// the tables; where a browser is installed (chromium, which CI installs)
// it renders it too.
func TestHTMLReport(t *testing.T) {
	d := load(t)
	var b bytes.Buffer
	if err := HTML(&b, d); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var svgs, rows int
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == "id" {
					ids[a.Val] = true
				}
				if (a.Key == "src" || a.Key == "href") && a.Val != "" {
					t.Errorf("<%s %s=%q>: the page must load nothing", n.Data, a.Key, a.Val)
				}
			}
			switch n.Data {
			case "script", "link", "img", "iframe":
				t.Errorf("<%s> in a self-contained report", n.Data)
			case "svg":
				svgs++
			case "tr":
				rows++
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, id := range []string{"totals", "chart", "sources", "top", "problems"} {
		if !ids[id] {
			t.Errorf("no #%s", id)
		}
	}
	if svgs != 1 || rows < 3+1+len(d.Sources)+1+len(d.TopBlocked) {
		t.Errorf("%d charts, %d table rows", svgs, rows)
	}
	golden(t, "report.html", b.Bytes())

	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI installs chromium to render the report (apt-get install chromium)")
		}
		t.Log("no chromium: the page was checked by the HTML parser only")
		return
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --dump-dom: %v", browser, err)
	}
	// The DOM as the browser built it: the chart's bars and the tables.
	if got := strings.Count(string(out), "<rect "); got != 2*len(d.Hours) || !strings.Contains(string(out), `id="sources"`) {
		t.Fatalf("the browser's DOM has %d bars:\n%.2000s", got, out)
	}
}

// Text from the state (a source's name, a DNS error) cannot break out:
// escaped in the page and the chart, kept on its line in the mail.
func TestReportEscapesStateText(t *testing.T) {
	d := load(t)
	evil := "feed:x</td><script>alert(1)</script>\nSubject: hi"
	d.Sources = append(d.Sources, Source{List: "black", Source: evil, Entries: 1})
	d.Host = `mx"><script>alert(2)</script>`
	d.Walks.Problems = append(d.Walks.Problems, "evil.example: <img src=x onerror=alert(3)>")
	var h, s, txt bytes.Buffer
	if err := HTML(&h, d); err != nil {
		t.Fatal(err)
	}
	if err := SVG(&s, d); err != nil {
		t.Fatal(err)
	}
	if err := Text(&txt, d); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"html": h.String(), "svg": s.String()} {
		if strings.Contains(out, "<script>") || strings.Contains(out, "<img") {
			t.Errorf("%s: state text became markup", name)
		}
	}
	if strings.Contains(txt.String(), "\nSubject: hi") {
		t.Error("text: a newline from the state started a line of its own")
	}
}

// A week charts per day, so the mail stays short.
func TestTextReportWeekPerDay(t *testing.T) {
	d := load(t)
	day := d.Hours
	for i := 1; i < 7; i++ {
		for _, h := range day[:24] {
			h.Start = h.Start.AddDate(0, 0, i)
			d.Hours = append(d.Hours, h)
		}
	}
	var b bytes.Buffer
	if err := Text(&b, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Per day: ") || strings.Count(b.String(), "#") < 7 {
		t.Fatalf("a week:\n%s", b.String())
	}
	if lines := strings.Count(b.String(), "\n"); lines > 60 {
		t.Fatalf("a week's report is %d lines", lines)
	}
}
