"""Media: pictures, voice notes and files between the channels, the Control UI and the models.

`store` keeps the bytes under `<state>/media/` (streamed to disk, size-capped, pruned by age
and total size) and hands out `MediaRef`s; transcripts hold those references, never base64.
`sniff` names a file's type from its bytes; `inbound` turns channel attachments into
references and text notes (transcribing voice notes with `transcribe`); `blocks` turns the
references of a conversation into model blocks fitted to each model (vision or a note, PDF
document or extracted text); `outbound` finds files the agent sends back; `serve` signs the
short-lived URLs the Control UI shows images with.
"""
