"""EVA through PEFT: LoRA initialised from the SVD of the task's layer inputs, with ranks redistributed."""

from __future__ import annotations

import time

import torch

from gelora.train.loaders import input_loader
from gelora.train.methods.base import BuildContext
from gelora.train.methods.lora import LoRA


class EVA(LoRA):
    """Uniform rank R to start; EVA moves rank between modules (up to rho x R) by explained variance."""

    name = "eva"
    uses_options = LoRA.uses_options | {"eva_rho"}

    def build(self, base: torch.nn.Module, ctx: BuildContext) -> torch.nn.Module:
        from peft import EvaConfig, get_peft_model, initialize_lora_eva_weights

        lora = self.lora_config(
            self.checked_plan(base, ctx),
            base,
            ctx,
            init_lora_weights="eva",
            # Classification inputs carry no token labels to mask out.
            eva_config=EvaConfig(rho=self.config.eva_rho, use_label_mask=False),
        )
        # The SVD pass runs on the training device; adapter weights stay empty (meta) until EVA fills them.
        model = get_peft_model(base.to(ctx.accelerator.device), lora, low_cpu_mem_usage=True)
        accelerator = ctx.accelerator
        inputs = input_loader(ctx.data, self.config.batch_size, accelerator.process_index, accelerator.num_processes)
        start = time.perf_counter()
        initialize_lora_eva_weights(model, inputs, show_progress_bar=False)
        self.info.update(eva_seconds=time.perf_counter() - start, eva_rho=self.config.eva_rho)
        return model
