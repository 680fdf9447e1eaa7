"""The qos role: bandwidth limits with tc (tbf on the tap, IFB for what the instance sends) and DSCP marking."""
