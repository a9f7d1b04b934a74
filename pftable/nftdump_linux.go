package pftable

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// A set's elements come from the kernel in a netlink dump, and the kernel
// answers each of the dump's reads by walking the set from its first
// element to where the last read stopped: reading n elements k at a time
// costs n²/2k steps. The library reads in pages, about 150 elements of
// an interval set at a time, so a million elements took 700 s. Reading
// in the largest buffers the kernel fills (32 KiB) cuts the steps eight
// times; not reading at all what spfd can prove it wrote is the rest of
// the cure (see NFTables.Sync).

// dumpReadSize is what each read asks for: the kernel sizes its dump
// messages by the largest read so far, up to 32 KiB.
const dumpReadSize = 64 << 10

// nftaSetElemExpressions is NFTA_SET_ELEM_EXPRESSIONS (Linux 5.12+),
// which newer kernels use for an element's counter.
const nftaSetElemExpressions = 0xb

// dumpSetElements reads a set's elements through a netlink socket of its
// own: the keys, interval ends, and counters. It gives up when ctx ends.
func dumpSetElements(ctx context.Context, s *nftables.Set) ([]nftables.SetElement, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Room for a few of the kernel's messages while we parse.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	// Wake up now and then to notice ctx.
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte(s.Table.Name + "\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte(s.Name + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	const seq = 1
	req := make([]byte, unix.NLMSG_HDRLEN+4, unix.NLMSG_HDRLEN+4+len(attrs))
	req = append(req, attrs...)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], uint16(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETSETELEM))
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], seq)
	// struct nfgenmsg: family, version, res_id
	req[16], req[17] = byte(s.Table.Family), unix.NFNETLINK_V0
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	var elems []nftables.SetElement
	buf := make([]byte, dumpReadSize)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return elems, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("netlink: short error message")
				}
				if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
					return nil, os.NewSyscallError("netlink dump", syscall.Errno(-code))
				}
				return elems, nil
			}
			if len(m.Data) < 4 {
				continue
			}
			if elems, err = appendElements(elems, m.Data[4:]); err != nil {
				return nil, err
			}
		}
	}
}

// appendElements decodes one NFT_MSG_NEWSETELEM message's elements.
func appendElements(elems []nftables.SetElement, data []byte) ([]nftables.SetElement, error) {
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			continue
		}
		ad.Nested(func(list *netlink.AttributeDecoder) error {
			for list.Next() {
				if list.Type() != unix.NFTA_LIST_ELEM {
					continue
				}
				var e nftables.SetElement
				list.Nested(func(el *netlink.AttributeDecoder) error {
					el.ByteOrder = binary.BigEndian
					for el.Next() {
						switch el.Type() {
						case unix.NFTA_SET_ELEM_KEY:
							el.Nested(func(k *netlink.AttributeDecoder) error {
								for k.Next() {
									if k.Type() == unix.NFTA_DATA_VALUE {
										e.Key = k.Bytes()
									}
								}
								return nil
							})
						case unix.NFTA_SET_ELEM_FLAGS:
							e.IntervalEnd = el.Uint32()&unix.NFT_SET_ELEM_INTERVAL_END != 0
						case unix.NFTA_SET_ELEM_EXPR:
							el.Nested(func(x *netlink.AttributeDecoder) error { return decodeCounter(x, &e) })
						case nftaSetElemExpressions:
							el.Nested(func(xs *netlink.AttributeDecoder) error {
								for xs.Next() {
									if xs.Type() == unix.NFTA_LIST_ELEM {
										xs.Nested(func(x *netlink.AttributeDecoder) error { return decodeCounter(x, &e) })
									}
								}
								return nil
							})
						}
					}
					return nil
				})
				elems = append(elems, e)
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return nil, fmt.Errorf("decoding set elements: %w", err)
	}
	return elems, nil
}

// decodeCounter reads a counter expression (name "counter", data packets
// and bytes) into e.
func decodeCounter(x *netlink.AttributeDecoder, e *nftables.SetElement) error {
	x.ByteOrder = binary.BigEndian
	var name string
	var data []byte
	for x.Next() {
		switch x.Type() {
		case unix.NFTA_EXPR_NAME:
			name = x.String()
		case unix.NFTA_EXPR_DATA:
			data = x.Bytes()
		}
	}
	if name != "counter" || data == nil {
		return nil
	}
	d, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return err
	}
	d.ByteOrder = binary.BigEndian
	var c expr.Counter
	for d.Next() {
		switch d.Type() {
		case unix.NFTA_COUNTER_BYTES:
			c.Bytes = d.Uint64()
		case unix.NFTA_COUNTER_PACKETS:
			c.Packets = d.Uint64()
		}
	}
	e.Counter = &c
	return d.Err()
}
