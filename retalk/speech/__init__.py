"""Speech front end: audio features, phones and visemes, mouth targets, text-to-speech, the Wav2Lip mel."""
