// Package bot is the platform-neutral core of vmtriage's chat-ops bot.
//
// Adapters at the edge (the Slack app, the demo's console chat) turn a slash
// command, a button click or a typed console line into one neutral Command.
// A button carries the same command text as the typed form, so one Router
// and one permission check serve every way in. The Router answers with a
// neutral Reply: a headline, sections of plain structured text, collapsible
// lists and buttons. Nothing in a Reply is markup; every user-controlled
// string is kept as data and escaped by the renderer (see EscapeMrkdwn for
// Slack's rules).
//
// The Notifier consumes incident changes from a stream (through the small
// EventSource interface this package declares), turns each into a
// Notification carrying an IncidentView, and hands it to a Poster: the
// console prints it, a Slack poster posts it and updates it in place.
//
// The package imports neither the state store nor any chat SDK: it declares
// the few methods it calls and lets the application wire implementations in.
package bot
