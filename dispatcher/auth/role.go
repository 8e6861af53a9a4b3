// Package auth turns bearer tokens into principals and decides what each
// role may do. Secrets are shown once at creation; only their SHA-256 is
// stored.
package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pando-wms/pando/dispatcher/store"
)

// Action is something a principal may be allowed to do.
type Action int

const (
	SubmitTask   Action = iota + 1
	ReadOwn             // see own tasks, jobs and logs
	ReadAll             // see everyone's
	KillOwn             // kill or retry own work
	KillAny             // kill or retry anyone's
	CreateToken         // mint tokens for any role
	ConnectAgent        // connect as a pilot, edge or harvester
	ViewAgents          // list connected agents
	ReadPolicy          // see queues and shares
	ManagePolicy        // create and change queues and share targets
)

var actionNames = map[Action]string{
	SubmitTask: "submit-task", ReadOwn: "read-own", ReadAll: "read-all", KillOwn: "kill-own",
	KillAny: "kill-any", CreateToken: "create-token", ConnectAgent: "connect-agent", ViewAgents: "view-agents",
	ReadPolicy: "read-policy", ManagePolicy: "manage-policy",
}

func (a Action) String() string {
	if n, ok := actionNames[a]; ok {
		return n
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// grants is the role table. Admin is absent: it may do everything.
var grants = map[store.Role][]Action{
	store.RoleOperator: {SubmitTask, ReadOwn, ReadAll, KillOwn, KillAny, ViewAgents, ReadPolicy, ManagePolicy},
	store.RoleUser:     {SubmitTask, ReadOwn, KillOwn, ReadPolicy},
	store.RoleAgent:    {ConnectAgent},
}

// Principal is an authenticated token holder.
type Principal struct {
	Name string
	Role store.Role
}

// Can reports whether p's role allows a. Whether the work is p's own is
// for the caller to check against p.Name.
func (p Principal) Can(a Action) bool {
	if p.Role == store.RoleAdmin {
		return true
	}
	return slices.Contains(grants[p.Role], a)
}

// ParseRole reads a role name, ignoring case and surrounding space.
func ParseRole(s string) (store.Role, error) {
	if r := store.Role(strings.ToLower(strings.TrimSpace(s))); validRole(r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want admin, operator, user or agent)", s)
}

func validRole(r store.Role) bool {
	switch r {
	case store.RoleAdmin, store.RoleOperator, store.RoleUser, store.RoleAgent:
		return true
	}
	return false
}
