"""The command-line faces of the toolkit: click lives here and nowhere else.

Each command turns its options into the libraries' dataclass configs and calls them:
`commands.wgan` (wgan-train, wgan-sample, wgan-select), `commands.classifier` (classifier-train,
wgan-eval) and `commands.augment` (augment-eval, augment-cml). Options shared by several commands
are defined once in `commands.options`. The libraries (`wgan`, `classifier`, `augment`) never
import click, and `wgan` imports nothing from the other two: wiring a classifier-based scorer
into wgan-train happens here.
"""
