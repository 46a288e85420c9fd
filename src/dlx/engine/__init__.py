"""The one trainer for every torch model, and the tasks that give it loss and metrics."""
