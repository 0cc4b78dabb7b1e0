// Package rules holds custos's default detection rules (default.yaml),
// embedded so that a binary runs without a rules path. detect.ParseRules
// validates them.
package rules

import _ "embed"

// Default is the content of default.yaml.
//
//go:embed default.yaml
var Default []byte
