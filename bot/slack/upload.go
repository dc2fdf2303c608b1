package slack

import (
	"bytes"
	"context"

	goslack "github.com/slack-go/slack"
)

// FileAPI is the part of the Slack Web API an Uploader uses (slack-go's v2
// upload: files.getUploadURLExternal, the upload, files.completeUploadExternal).
type FileAPI interface {
	UploadFileContext(ctx context.Context, params goslack.UploadFileParameters) (*goslack.FileSummary, error)
}

// Uploader posts files (report charts) to channels, so that nothing outside
// this package needs slack-go's types.
type Uploader struct{ API FileAPI }

// UploadFile posts data to channel as filename, with title as its title
// and alternative text.
func (u Uploader) UploadFile(ctx context.Context, channel, filename, title string, data []byte) error {
	_, err := u.API.UploadFileContext(ctx, goslack.UploadFileParameters{
		Channel: channel, Filename: filename, FileSize: len(data), Reader: bytes.NewReader(data),
		Title: title, AltTxt: title,
	})
	return err
}
