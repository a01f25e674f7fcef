// Package faultproxy is a TCP proxy for tests that fails on command: it
// forwards, swallows every byte (a network partition) or refuses connections
// (a stopped server), so tests cut a database off without stopping it.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards a loopback port to a server (a database) and can fail on
// command, standing in for an outage without touching the shared servers.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  Mode
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Mode is what the proxy does with connections.
type Mode int

// The modes.
const (
	Forward   Mode = iota // pass bytes both ways
	Blackhole             // accept and hold connections, drop every byte
	Refuse                // close every connection at once
)

func (m Mode) String() string { return [...]string{"forward", "blackhole", "refuse"}[m] }

// Start listens on a free loopback port, forwarding to target, until the
// test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.acceptLoop)
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's address, to dial instead of target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		switch mode {
		case Refuse:
			_ = c.Close()
			continue
		case Blackhole:
			p.track(c)
			p.wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(c)
		p.track(up)
		p.wg.Go(func() { p.pipe(c, up) })
		p.wg.Go(func() { p.pipe(up, c) })
	}
}

func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = struct{}{}
}

// pipe copies src to dst while forwarding and drops the bytes otherwise.
func (p *Proxy) pipe(src, dst net.Conn) {
	defer func() { _ = src.Close(); _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			forward := p.mode == Forward
			p.mu.Unlock()
			if forward {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// Set switches mode. Entering the black hole keeps the open connections, now
// silent, as a network partition would; leaving it or refusing closes them:
// they lost bytes and cannot resume, and refusing means the server is gone.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m != Blackhole {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
	p.mode = m
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.Set(Refuse)
	p.wg.Wait()
}
