"""Visual question answering (VQA v2): deeper LSTM Q + norm I, official VQA accuracy."""
