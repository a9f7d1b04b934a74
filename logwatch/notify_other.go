//go:build !linux && !openbsd

package logwatch

func newNotifier(string) notifier { return pollOnly{} }
