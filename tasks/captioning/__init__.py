"""Image captioning (COCO, Flickr8k): CNN encoder + LSTM decoder, beam search, official COCO metrics."""
