// Package security is Equilateral's progressive security model: four
// levels (foundation, enhanced, advanced, enterprise), each switching on
// more controls; environments (development, production, enterprise) whose
// gates refuse to run below a level; and the usage thresholds that say
// which level a system has grown into.
//
// The package holds the vocabulary and the rules, not the controls
// themselves: the orchestrator, the agents SDK, the client and the admin
// commands each ask Level.Has (or Level.AtLeast) whether a control is on,
// and report what they can observe as Facts for Gate.
package security
