package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
)

// The chart: per hour, a red bar for what the blacklist denied and a
// green one for the SMTP connections the MTA accepted, on one scale.
const (
	chartLeft   = 70
	chartTop    = 40
	chartHeight = 200
	barGap      = 2
	colorDenied = "#c0392b"
	colorMail   = "#27ae60"
)

// SVG writes the report's chart as a standalone SVG image.
func SVG(w io.Writer, d *Data) error {
	var b bytes.Buffer
	chart(&b, d, true)
	_, err := w.Write(b.Bytes())
	return err
}

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(oneLine(s)))
	return b.String()
}

// chart draws the SVG; standalone adds the XML declaration and namespace
// that a file needs and an HTML page does not.
func chart(b *bytes.Buffer, d *Data, standalone bool) {
	n := max(len(d.Hours), 1)
	group := max(6, min(24, 720/n)) // the width of one hour's pair of bars
	width := chartLeft + n*group + 20
	height := chartTop + chartHeight + 60
	var most uint64 = 1
	for _, h := range d.Hours {
		denied, _ := h.Denied()
		most = max(most, denied, h.MailConnections)
	}
	if standalone {
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	}
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(b, `<title>spfd: denied %s and accepted SMTP connections per hour, %s</title>`+"\n", d.deniedUnit(), esc(d.Host))
	fmt.Fprintf(b, `<text x="%d" y="20" font-size="14">Per hour: <tspan fill="%s">denied %s</tspan> and <tspan fill="%s">SMTP connections accepted</tspan></text>`+"\n",
		chartLeft, colorDenied, d.deniedUnit(), colorMail)
	// Axis and scale: the top value and zero.
	base := chartTop + chartHeight
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#555"/>`+"\n", chartLeft, base, chartLeft+n*group, base)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#555"/>`+"\n", chartLeft, chartTop, chartLeft, base)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%d</text>`+"\n", chartLeft-4, chartTop+4, most)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">0</text>`+"\n", chartLeft-4, base+4)
	half := (group - barGap) / 2
	for i, h := range d.Hours {
		x := chartLeft + i*group + barGap
		denied, _ := h.Denied()
		for j, v := range []struct {
			n     uint64
			color string
			what  string
		}{{denied, colorDenied, "denied"}, {h.MailConnections, colorMail, "accepted"}} {
			bh := int(v.n * chartHeight / most)
			if v.n > 0 {
				bh = max(bh, 1)
			}
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s: %d</title></rect>`+"\n",
				x+j*half, base-bh, max(half-1, 1), bh, v.color, h.Start.Format("Jan 02 15:04"), v.what, v.n)
		}
		// An hour label every six hours, at least one.
		if h.Start.Hour()%6 == 0 || len(d.Hours) == 1 {
			fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x+half, base+16, h.Start.Format("15h"))
			if h.Start.Hour() == 0 || i == 0 {
				fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x+half, base+30, h.Start.Format("Jan 02"))
			}
		}
	}
	b.WriteString("</svg>\n")
}
