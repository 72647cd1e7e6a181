//! asm: installs and operates managed Anthos Service Mesh on GKE.
