package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// hms shows seconds also as h:mm:ss.
func hms(sec float64) string {
	whole := int64(math.Floor(sec))
	frac := sec - float64(whole)
	s := fmt.Sprintf("%d:%02d:%02d", whole/3600, whole/60%60, whole%60)
	if frac > 0.0001 {
		s += strings.TrimPrefix(strconv.FormatFloat(frac, 'f', 1, 64), "0")
	}
	return s
}

func seconds(sec float64) string {
	return strconv.FormatFloat(sec, 'f', -1, 64) + " s (" + hms(sec) + ")"
}

// bar draws a usage bar of width cells.
func bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	n := int(math.Round(frac * float64(width)))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// table writes label/value rows aligned; an empty row separates groups.
func table(w io.Writer, rows [][2]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n")+"\n")
	return err
}

// printRaw prints the API's answer exactly (json) or as YAML.
func printRaw(w io.Writer, output string, raw []byte) error {
	switch output {
	case "json":
		_, err := w.Write(raw)
		if len(raw) > 0 && raw[len(raw)-1] != '\n' {
			_, err = w.Write([]byte("\n"))
		}
		return err
	case "yaml":
		y, err := yaml.JSONToYAML(raw)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	}
	return fmt.Errorf("unknown output %q", output)
}

func printValue(w io.Writer, output string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return printRaw(w, output, b)
}
