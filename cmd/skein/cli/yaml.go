package cli

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlLine finds the line of a dotted field path ("queue.max_records",
// "retry.statuses[1]", "headers.X-Key") in a YAML document; 0 if absent.
func yamlLine(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	var keys []string
	if rest, ok := strings.CutPrefix(path, "headers."); ok {
		keys = []string{"headers", rest} // header names may hold dots
	} else {
		keys = strings.Split(path, ".")
	}
	line := 0
	for _, key := range keys {
		idx := -1
		if i := strings.IndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
			idx, _ = strconv.Atoi(key[i+1 : len(key)-1])
			key = key[:i]
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
		if idx >= 0 && n.Kind == yaml.SequenceNode && idx < len(n.Content) {
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}
