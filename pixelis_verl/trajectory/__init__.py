"""The trajectory record, at the bottom of the package: what a rollout did, in the form every layer reads.

`steps`: the step record each pixel-tool call appends and every key we add to verl's `extra_fields`;
`parse`: a decoded response split into the assistant's turns and calls (`Trajectory`), from a row of verl's
generation batch (`item_trajectory`); `answers`: extracting and matching answers. Tools write records with it;
rewards, TTRL and evaluation read them. It imports nothing of ours above it.
"""
