package main

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeValue is a byte-size flag: "-1" or "unlimited", a plain number of
// bytes, or a number with a unit (KB, MB, GB, TB are powers of 1000; KiB,
// MiB, GiB, TiB powers of 1024).
type sizeValue struct{ n *int64 }

var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "-1" || strings.EqualFold(s, "unlimited") {
		return -1, nil
	}
	factor := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, factor = strings.TrimSpace(rest), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive size such as 1048576, 64KiB or 1GB, or -1 for unlimited")
	}
	if n > (1<<63-1)/factor {
		return 0, fmt.Errorf("size too large")
	}
	return n * factor, nil
}

func (v sizeValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.FormatInt(*v.n, 10)
}

func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.n = n
	return nil
}

func (v sizeValue) Type() string { return "size" }
