"""A user's own model through the pipeline: reading tf_keras and Keras 3 models (the Keras 3
translation), inspecting what each layer becomes, preparing the graphs (masks, streaming,
encoder-decoders), and export_keras.
"""
