// Package state is what spfd persists and serves from: the whitelist and
// blacklist with their sources and expiries (Lists), each domain's walk
// state (DomainState), and the state directory that keeps them across
// restarts and kill -9 (Store: a checked snapshot plus a journal of the
// changes since, written with group commit). The daemon owns one of each
// and changes the lists only through journalled ops, applied in journal
// order once they are on disk.
package state
