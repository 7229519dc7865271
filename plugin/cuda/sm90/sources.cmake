# Sources of the sm_90a SageAttention path (plugin/cuda/sm90). Sets SAGE_SM90_SOURCES (absolute paths).
set(SAGE_SM90_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/host/plan.cpp
    ${CMAKE_CURRENT_LIST_DIR}/host/tensor_map.cpp
    ${CMAKE_CURRENT_LIST_DIR}/host/sm90_entry.cpp
    ${CMAKE_CURRENT_LIST_DIR}/kernels/prepass.cu
    ${CMAKE_CURRENT_LIST_DIR}/kernels/prepass_keys.cu
    ${CMAKE_CURRENT_LIST_DIR}/kernels/attention_hd64.cu
    ${CMAKE_CURRENT_LIST_DIR}/kernels/attention_hd128.cu
    ${CMAKE_CURRENT_LIST_DIR}/kernels/attention_keys_hd64.cu
    ${CMAKE_CURRENT_LIST_DIR}/kernels/attention_keys_hd128.cu
    ${CMAKE_CURRENT_LIST_DIR}/kernels/attention_mask_hd64.cu
    ${CMAKE_CURRENT_LIST_DIR}/kernels/attention_mask_hd128.cu)
# Shared with the portable path and compiled there (sage_cuda): the key-validity pass of bool key-padding masks
# (launch_key_bits), which the sm90 path calls too. Only a library without sage_cuda (libsage_sm90.so) adds it.
set(SAGE_SM90_SHARED_SOURCES ${CMAKE_CURRENT_LIST_DIR}/../preprocess/key_validity.cu)
# The plain-C test entry points (host/sm90_c_api.h), for libsage_sm90.so only.
set(SAGE_SM90_C_API_SOURCES ${CMAKE_CURRENT_LIST_DIR}/host/sm90_c_api.cpp ${SAGE_SM90_SHARED_SOURCES})
