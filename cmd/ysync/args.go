package main

import (
	"flag"
	"regexp"
	"strings"
)

// parseInterspersed parses args with fs, letting flags come before, between or after the
// positional arguments (`ysync migrate up --database-url URL` works as well as `ysync migrate
// --database-url URL up`), and returns the positional ones in order. Everything after "--" is
// positional. A negative number ("force -1") is a positional argument, not a flag.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case len(a) < 2 || a[0] != '-' || negativeNumber.MatchString(a):
			pos = append(pos, a)
		default:
			flags = append(flags, a)
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if hasValue || i+1 == len(args) {
				continue
			}
			// A flag without "=value" takes the next argument as its value, unless it is a
			// boolean flag. Unknown flags are left for fs.Parse to report.
			if f := fs.Lookup(name); f != nil {
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
					i++
					flags = append(flags, args[i])
				}
			}
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return pos, nil
}

var negativeNumber = regexp.MustCompile(`^-[0-9]+$`)
