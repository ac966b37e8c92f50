// Command oracle answers, with the real k8s.io/apiserver code, the questions kubeadm-audit
// answers in Python: would kube-apiserver load this audit policy (and what does it warn), what
// level, omitStages and omitManagedFields does its policy checker give a request, and would it
// accept these --audit-* flags.
//
// It is test tooling of this project (conformance/build.py builds it against each pinned
// k8s.io/apiserver release); no upstream code is copied here, it only calls the library.
//
// Protocol: one JSON object per line on stdin, one JSON result per line on stdout, in order.
//
//	{"op":"version"}
//	  -> {"apiserver":"v0.37.2"}
//	{"op":"policy","policy":"<file text>","requests":[{...}, ...]}
//	  -> {"loaded":true,"error":"","warnings":["..."],"decisions":[{"level":"Metadata",
//	      "omitStages":["RequestReceived"],"omitManagedFields":false}, ...]}
//	{"op":"flags","argv":["--audit-log-path=/x", ...],"otherFlags":{"secure-port":"string"}}
//	  -> {"valid":false,"parseError":"","errors":["..."],"warnings":["..."]}
//
// A request is the authorizer attributes kube-apiserver builds for a request:
// {"user": "alice" | null, "groups": [...] | null, "verb", "namespace", "apiGroup", "apiVersion",
// "resource", "subresource", "name", "path", "resourceRequest": bool}. A null (or absent) user
// is a request without user info; groups null and [] are both "no groups".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/server/options"
	"k8s.io/klog/v2"
)

type request struct {
	User            *string  `json:"user"`
	Groups          []string `json:"groups"`
	Verb            string   `json:"verb"`
	Namespace       string   `json:"namespace"`
	APIGroup        string   `json:"apiGroup"`
	APIVersion      string   `json:"apiVersion"`
	Resource        string   `json:"resource"`
	Subresource     string   `json:"subresource"`
	Name            string   `json:"name"`
	Path            string   `json:"path"`
	ResourceRequest bool     `json:"resourceRequest"`
}

type command struct {
	Op         string            `json:"op"`
	Policy     string            `json:"policy"`
	Requests   []request         `json:"requests"`
	Argv       []string          `json:"argv"`
	OtherFlags map[string]string `json:"otherFlags"`
}

type decision struct {
	Level             string   `json:"level"`
	OmitStages        []string `json:"omitStages"`
	OmitManagedFields bool     `json:"omitManagedFields"`
}

type policyResult struct {
	Loaded    bool       `json:"loaded"`
	Error     string     `json:"error"`
	Warnings  []string   `json:"warnings"`
	Decisions []decision `json:"decisions"`
}

type flagsResult struct {
	Valid      bool     `json:"valid"`
	ParseError string   `json:"parseError"`
	Errors     []string `json:"errors"`
	Warnings   []string `json:"warnings"`
}

// capture collects what k8s.io/apiserver logs through klog (the lenient-decoding warning).
type capture struct {
	mu       sync.Mutex
	messages []string
}

func (c *capture) Init(logr.RuntimeInfo)  {}
func (c *capture) Enabled(level int) bool { return level == 0 }
func (c *capture) Info(_ int, msg string, _ ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.messages = append(c.messages, msg)
}
func (c *capture) Error(err error, msg string, _ ...any) { c.Info(0, fmt.Sprintf("%s: %v", msg, err)) }
func (c *capture) WithValues(...any) logr.LogSink        { return c }
func (c *capture) WithName(string) logr.LogSink          { return c }

func (c *capture) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.messages
	c.messages = nil
	if out == nil {
		out = []string{}
	}
	return out
}

var logs = &capture{}

func apiserverVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "k8s.io/apiserver" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

// attributes builds what kube-apiserver's request-info and authentication filters hand the
// policy checker: user nil when the request carries no user info.
func attributes(r request) authorizer.Attributes {
	record := authorizer.AttributesRecord{
		Verb:            r.Verb,
		Namespace:       r.Namespace,
		APIGroup:        r.APIGroup,
		APIVersion:      r.APIVersion,
		Resource:        r.Resource,
		Subresource:     r.Subresource,
		Name:            r.Name,
		ResourceRequest: r.ResourceRequest,
		Path:            r.Path,
	}
	if r.User != nil {
		record.User = &user.DefaultInfo{Name: *r.User, Groups: r.Groups}
	}
	return record
}

func sortedStages[S ~string](stages []S) []string {
	out := make([]string, 0, len(stages))
	for _, s := range stages {
		out = append(out, string(s))
	}
	sort.Strings(out)
	return out
}

// checkPolicy loads the text as kube-apiserver loads --audit-policy-file, then evaluates each
// request with the real rule evaluator.
func checkPolicy(dir string, cmd command) policyResult {
	file := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(file, []byte(cmd.Policy), 0o600); err != nil {
		fatal(err)
	}
	logs.take()
	loaded, err := policy.LoadPolicyFromFile(file)
	result := policyResult{Warnings: logs.take(), Decisions: []decision{}}
	if err != nil {
		result.Error = strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
		return result
	}
	result.Loaded = true
	evaluator := policy.NewPolicyRuleEvaluator(loaded)
	for _, r := range cmd.Requests {
		config := evaluator.EvaluatePolicyRule(attributes(r))
		result.Decisions = append(result.Decisions, decision{
			Level:             string(config.Level),
			OmitStages:        sortedStages(config.OmitStages),
			OmitManagedFields: config.OmitManagedFields,
		})
	}
	return result
}

// checkFlags parses argv with the real audit options registered on a pflag FlagSet, as
// kube-apiserver's command does, then runs their Validate. otherFlags declares the non-audit
// kube-apiserver flags the argv uses (name -> "bool" or "string"), so they parse as there.
func checkFlags(cmd command) flagsResult {
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	fs.Usage = func() {}
	audit := options.NewAuditOptions()
	audit.AddFlags(fs)
	for name, kind := range cmd.OtherFlags {
		if kind == "bool" {
			fs.Bool(name, false, "")
		} else {
			fs.String(name, "", "")
		}
	}
	logs.take()
	result := flagsResult{Errors: []string{}}
	if err := fs.Parse(cmd.Argv); err != nil {
		result.ParseError = err.Error()
	} else {
		for _, err := range audit.Validate() {
			result.Errors = append(result.Errors, err.Error())
		}
		result.Valid = len(result.Errors) == 0
	}
	result.Warnings = logs.take()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line != "" {
			result.Warnings = append(result.Warnings, line)
		}
	}
	return result
}

// workDir holds the policy files checkPolicy writes; fatal removes it (os.Exit skips defers).
var workDir string

func fatal(err error) {
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	fmt.Fprintf(os.Stderr, "oracle: %v\n", err)
	os.Exit(2)
}

func main() {
	klog.SetLogger(logr.New(logs))
	dir, err := os.MkdirTemp("", "kubeadm-audit-oracle-")
	if err != nil {
		fatal(err)
	}
	workDir = dir
	defer os.RemoveAll(dir)

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	encoder := json.NewEncoder(out)
	encoder.SetEscapeHTML(false)
	for in.Scan() {
		var cmd command
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			fatal(fmt.Errorf("bad input line: %v", err))
		}
		var result any
		switch cmd.Op {
		case "version":
			result = map[string]string{"apiserver": apiserverVersion()}
		case "policy":
			result = checkPolicy(dir, cmd)
		case "flags":
			result = checkFlags(cmd)
		default:
			fatal(fmt.Errorf("unknown op %q", cmd.Op))
		}
		if err := encoder.Encode(result); err != nil {
			fatal(err)
		}
		if err := out.Flush(); err != nil {
			fatal(err)
		}
	}
	if err := in.Err(); err != nil {
		fatal(err)
	}
}
