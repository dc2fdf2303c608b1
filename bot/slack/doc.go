// Package slack is vmtriage's Slack adapter, kept at the edge: it renders
// the bot's neutral replies and incident views as Block Kit, posts incident
// messages and keeps them up to date, and turns slash commands and button
// clicks into the bot's neutral commands.
//
// Outbound, a Poster (a bot.Poster) posts the first message of an incident
// with chat.postMessage, updates that one message in place with chat.update
// as the incident moves, and puts follow-ups (escalation with the mentions
// of its targets, acknowledgement, approval, ticket, silence, recurrence,
// resolution) in the message's thread. Where each incident's message lives
// (channel, ts, the highest version rendered) is kept in Redis through the
// MessageStore interface, with a lease so two replicas never post two
// messages for one incident and an older version never overwrites a newer.
//
// Buttons carry the command text they run as their value, under an
// action_id "vmtriage:cmd:<n>" (unique in the message); link buttons use
// "vmtriage:link:<n>" and carry no command. The inbound half runs a clicked
// value through the same bot.Router as the typed command.
//
// Every string that comes from outside (IDs, names, reasons, summaries) is
// escaped with bot.EscapeMrkdwn before it reaches Slack, and every Block
// Kit limit is counted in characters, not bytes.
package slack
