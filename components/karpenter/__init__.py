"""karpenter"""
