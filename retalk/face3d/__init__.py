"""3DMM preprocessing shared by the VideoReTalking and SadTalker pipelines.

``crop``: FFHQ-quad crop boxes and aligned crops from 68 landmarks; ``align``: Deep3DFaceRecon's 5-point
POS alignment to 224×224 and the standard landmarks file; ``coeffs``: batched face3d coefficients of frames;
``templates``: expression templates (``expression.mat`` or an image). Nothing heavy is imported here.
"""
