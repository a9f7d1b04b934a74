// Command latency measures how long a log line takes to reach spfd's
// table file: it starts spfd (file backend, one sshd log, threshold 1),
// appends one attack line at a time for a new address, and times until
// the address is in the blacklist file.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	spfd := flag.String("spfd", "bin/spfd", "spfd binary")
	n := flag.Int("n", 200, "lines to time")
	flag.Parse()
	dir, err := os.MkdirTemp("", "spfd-latency")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	authlog := filepath.Join(dir, "authlog")
	black := filepath.Join(dir, "black.txt")
	os.WriteFile(authlog, nil, 0o644)
	conf := filepath.Join(dir, "spfd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`state-directory %q
socket %q
resolver 127.0.0.1:1
table white file %q
table black file %q
log sshd file %q threshold 1 within 1h
`, filepath.Join(dir, "state"), filepath.Join(dir, "sock"), filepath.Join(dir, "white.txt"), black, authlog)), 0o644)
	cmd := exec.Command(*spfd, "-d", "-f", conf)
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer cmd.Process.Kill()
	for i := 0; ; i++ {
		if _, err := os.Stat(black); err == nil {
			break
		}
		if i > 1000 {
			log.Fatal("spfd did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	f, err := os.OpenFile(authlog, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		log.Fatal(err)
	}
	var lat []time.Duration
	for i := range *n {
		// Odd last octets: neighbours never merge into a shorter prefix.
		ip := fmt.Sprintf("10.%d.%d.%d", 1+i/32768, (i/128)%256, 2*(i%128)+1)
		start := time.Now()
		fmt.Fprintf(f, "Nov 27 03:14:02 mx1 sshd[1]: Invalid user admin from %s port %d\n", ip, 1000+i)
		for !contains(black, ip+"/32") {
			if time.Since(start) > 5*time.Second {
				log.Fatalf("line %d: not in the table after 5s", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	fmt.Printf("log line to table file, %d lines: median %v, p90 %v, max %v\n",
		len(lat), lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*9/10].Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
}

// contains reads the table file; it is replaced atomically, so a read
// sees the old or the new content.
func contains(path, prefix string) bool {
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == prefix {
			return true
		}
	}
	return false
}
